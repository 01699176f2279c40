//! Why an order cannot be paid, closed or cancelled now, as problem details
//! that say so: a client (or an operator reading a provider's failed
//! webhook) learns what state the order is in, not just that it conflicts.

use domain::order::{OrderError, OrderStatus, PaymentStatus};
use domain::text::Reason;

use crate::aggregates::CommandError;
use crate::orders::OrdersError;
use api_common::problem::ProblemResponse;

/// Where the order stands, for a 409's detail.
fn standing(status: OrderStatus, payment: PaymentStatus, cancelled_because: Option<&Reason>) -> String {
    match status {
        OrderStatus::Pending => "the order is still pending: its stock is not reserved yet".to_owned(),
        OrderStatus::Rejected => "the order was rejected".to_owned(),
        OrderStatus::Cancelled => match cancelled_because {
            Some(reason) => format!("the order was cancelled: {reason}"),
            None => "the order was cancelled".to_owned(),
        },
        OrderStatus::Closed => "the order is closed".to_owned(),
        OrderStatus::Confirmed => format!("the order's payment is {}", payment.as_str()),
    }
}

/// The refusals of `POST /orders/{id}/payment`.
pub fn settle(error: OrdersError) -> ProblemResponse {
    match error {
        CommandError::Refused(OrderError::InvalidTransition {
            status,
            payment,
            cancelled_because,
            ..
        }) => ProblemResponse::conflict(
            "not-payable",
            format!(
                "{}; it cannot be paid",
                standing(status, payment, cancelled_because.as_ref())
            ),
        ),
        CommandError::Refused(OrderError::AlreadySettled) => ProblemResponse::conflict(
            "already-settled",
            "the order was paid already, with another payment reference",
        ),
        CommandError::Refused(OrderError::AmountMismatch { total }) => ProblemResponse::unprocessable(
            "amount-mismatch",
            format!("the amount paid must equal the order's total, {total}"),
            Some("amount"),
        ),
        other => common(other),
    }
}

/// The refusals of `POST /orders/{id}/close`.
pub fn close(error: OrdersError) -> ProblemResponse {
    match error {
        CommandError::Refused(OrderError::InvalidTransition {
            status,
            payment,
            cancelled_because,
            ..
        }) => {
            let standing = match status {
                OrderStatus::Confirmed => format!("this one's payment is {}", payment.as_str()),
                _ => standing(status, payment, cancelled_because.as_ref()),
            };
            ProblemResponse::conflict(
                "not-closable",
                format!("only a settled order can be closed; {standing}"),
            )
        }
        other => common(other),
    }
}

/// Why a cancel is refused: the 409 of `POST /orders/{id}/cancel`.
pub fn not_cancellable(
    status: OrderStatus,
    payment: PaymentStatus,
    cancelled_because: Option<&Reason>,
) -> ProblemResponse {
    let detail = match status {
        OrderStatus::Closed => "a closed order cannot be cancelled".to_owned(),
        _ => format!(
            "only a confirmed order can be cancelled; {}",
            standing(status, payment, cancelled_because)
        ),
    };
    ProblemResponse::conflict("not-cancellable", detail)
}

fn common(error: OrdersError) -> ProblemResponse {
    match error {
        CommandError::Refused(OrderError::NotFound | OrderError::NotOwner) => {
            ProblemResponse::not_found("no such order")
        }
        other => super::failure(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(problem: ProblemResponse) -> (u16, String) {
        let (status, problem, _) = super::super::parts(problem);
        (status, problem.0.detail)
    }

    fn refused(status: OrderStatus, payment: PaymentStatus, reason: Option<&str>) -> OrdersError {
        CommandError::Refused(OrderError::InvalidTransition {
            status,
            payment,
            action: "settled",
            cancelled_because: reason.map(|r| Reason::parse(r).unwrap()),
        })
    }

    #[test]
    fn each_refusal_says_where_the_order_stands() {
        use OrderStatus as S;
        use PaymentStatus as P;
        let cases = [
            (
                settle(refused(S::Cancelled, P::Cancelled, Some("payment window expired"))),
                "the order was cancelled: payment window expired; it cannot be paid",
            ),
            (
                settle(refused(S::Pending, P::Pending, None)),
                "the order is still pending: its stock is not reserved yet; it cannot be paid",
            ),
            (
                settle(refused(S::Rejected, P::Void, None)),
                "the order was rejected; it cannot be paid",
            ),
            (
                close(refused(S::Confirmed, P::Arranged, None)),
                "only a settled order can be closed; this one's payment is arranged",
            ),
            (
                not_cancellable(S::Closed, P::Settled, None),
                "a closed order cannot be cancelled",
            ),
        ];
        for (problem, expected) in cases {
            assert_eq!(detail(problem), (409, expected.to_owned()));
        }
        let (status, mismatch) = detail(settle(CommandError::Refused(OrderError::AmountMismatch {
            total: domain::money::Money::from_minor_units(4347),
        })));
        assert_eq!(
            (status, mismatch.as_str()),
            (422, "the amount paid must equal the order's total, 43.47")
        );
    }
}
