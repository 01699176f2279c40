"""The main flow through the GENERATED Python clients only, against a running Shop.

register -> login -> (admin) create product -> place order -> read it back from
the query API at its position -> cancel -> read it back cancelled; each answer
must parse into the generated model the document promises (the order status a
generated enum value, the total a money string). Run by `.ci/contract`, which
puts the generated packages on PYTHONPATH; it writes a customer's and an
admin's token to the file named by `--tokens-out` for the schemathesis runs.

usage: contract_flow.py COMMAND_URL QUERY_URL PROJECTORS_URL ADMIN_USER ADMIN_PASSWORD --tokens-out FILE
"""

import argparse
import re
import sys
import uuid

from command_api_client import AuthenticatedClient as CommandAuthClient
from command_api_client import Client as CommandClient
from command_api_client.api.auth import login, register
from command_api_client.api.orders import cancel_order, place_order
from command_api_client.api.products import create_product
from command_api_client.models import (
    AccessToken,
    CancelRequest,
    CreateProduct,
    CustomerContact,
    LoginRequest,
    OrderCancelled,
    OrderConfirmed,
    OrderItem,
    OrderStatus,
    PlaceOrderRequest,
    ProductChanged,
    RegisterRequest,
    Registered,
    Shipping,
)
from projectors_client import Client as ProjectorsClient
from projectors_client.api.projections import list_projections
from projectors_client.models import Projections
from query_api_client import AuthenticatedClient as QueryAuthClient
from query_api_client.api.orders import get_order
from query_api_client.models import OrderDetail
from query_api_client.models import OrderStatus as QueryOrderStatus

# What the server writes for money: integer minor units as `units.cents`.
MONEY = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")
TIMEOUT = 30.0


def expect(value, kind, what):
    """The answer must have parsed into the generated model `kind`."""
    if not isinstance(value, kind):
        sys.exit(f"FAIL {what}: expected {kind.__name__}, got {value!r}")
    print(f"ok   {what}: {kind.__name__}")
    return value


def check(condition, what):
    if not condition:
        sys.exit(f"FAIL {what}")


def log_in(client, username, password, what):
    token = login.sync(client=client, body=LoginRequest(username=username, password=password))
    token = expect(token, AccessToken, what)
    check(token.token_type == "Bearer", f"{what}: token type {token.token_type!r}")
    return token.access_token


def main():
    parser = argparse.ArgumentParser()
    for name in ("command_url", "query_url", "projectors_url", "admin_user", "admin_password"):
        parser.add_argument(name)
    parser.add_argument("--tokens-out", required=True)
    args = parser.parse_args()
    suffix = uuid.uuid4().hex[:12]
    anonymous = CommandClient(base_url=args.command_url, timeout=TIMEOUT, raise_on_unexpected_status=True)

    username, password = f"flow-{suffix}", "correct horse battery"
    registered = register.sync(
        client=anonymous,
        body=RegisterRequest(username=username, password=password, display_name="Flow Customer"),
    )
    expect(registered, Registered, "register")
    customer_token = log_in(anonymous, username, password, "customer login")
    admin_token = log_in(anonymous, args.admin_user, args.admin_password, "admin login")
    admin = CommandAuthClient(base_url=args.command_url, token=admin_token, timeout=TIMEOUT)
    customer = CommandAuthClient(base_url=args.command_url, token=customer_token, timeout=TIMEOUT)
    reader = QueryAuthClient(base_url=args.query_url, token=customer_token, timeout=TIMEOUT)

    product = create_product.sync(
        client=admin,
        body=CreateProduct(sku=f"FLOW-{suffix}", name="Flow widget", price="12.50", stock=5),
    )
    product = expect(product, ProductChanged, "create product (admin)")

    placed = place_order.sync(
        client=customer,
        body=PlaceOrderRequest(
            items=[OrderItem(product_id=product.product_id, quantity=2)],
            customer=CustomerContact(phone="+15551234567", name="Flow Customer", email="flow@example.com"),
            shipping=Shipping(
                address="1 Main St", city="Springfield", state="IL", country="US", postal_code="62701"
            ),
        ),
    )
    placed = expect(placed, OrderConfirmed, "place order")
    check(placed.status is OrderStatus.CONFIRMED, f"placed status {placed.status!r}")
    check(MONEY.match(placed.total) and placed.total == "25.00", f"placed total {placed.total!r}")

    detail = get_order.sync(placed.order_id, client=reader, min_position=placed.position)
    detail = expect(detail, OrderDetail, "read order at its position")
    check(detail.status is QueryOrderStatus.CONFIRMED, f"read status {detail.status!r}")
    check(isinstance(detail.total, str) and MONEY.match(detail.total), f"read total {detail.total!r}")
    check(detail.total == "25.00", f"read total {detail.total!r}")
    check([line.quantity for line in detail.lines] == [2], f"read lines {detail.lines!r}")

    cancelled = cancel_order.sync(placed.order_id, client=customer, body=CancelRequest(reason="changed my mind"))
    cancelled = expect(cancelled, OrderCancelled, "cancel order")
    check(cancelled.status is OrderStatus.CANCELLED, f"cancel status {cancelled.status!r}")

    detail = get_order.sync(placed.order_id, client=reader, min_position=cancelled.position)
    detail = expect(detail, OrderDetail, "read cancelled order at its position")
    check(detail.status is QueryOrderStatus.CANCELLED, f"read status {detail.status!r}")
    check(detail.cancel_reason == "changed my mind", f"cancel reason {detail.cancel_reason!r}")

    projections = list_projections.sync(client=ProjectorsClient(base_url=args.projectors_url, timeout=TIMEOUT))
    projections = expect(projections, Projections, "list projections")
    check(len(projections.projections) == 3, f"projections {projections!r}")

    with open(args.tokens_out, "w", encoding="utf-8") as out:
        out.write(f"{customer_token}\n{admin_token}\n")
    print("contract flow: ok")


if __name__ == "__main__":
    main()
