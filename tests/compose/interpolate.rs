//! Compose's variable interpolation: `${NAME}`, `${NAME:-default}`,
//! `${NAME:?message}` and `$$`, from the variables a `.env` would give.
//! An empty value counts as unset, as compose counts it for `:-` and `:?`.

/// `text` with every `${...}` replaced; panics, with the message, where a
/// `${NAME:?message}` finds nothing (compose refuses to start there).
pub fn expand(text: &str, variables: &[(&str, &str)]) -> String {
    let mut expanded = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        expanded.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            expanded.push('$');
            rest = tail;
            continue;
        }
        let braced = after
            .strip_prefix('{')
            .unwrap_or_else(|| panic!("write ${{NAME}}, not a bare $, in {text:?}"));
        let end = braced
            .find('}')
            .unwrap_or_else(|| panic!("an unclosed ${{ in {text:?}"));
        expanded.push_str(&substitute(&braced[..end], variables));
        rest = &braced[end + 1..];
    }
    expanded.push_str(rest);
    expanded
}

/// One `NAME`, `NAME:-default` or `NAME:?message`.
fn substitute(expression: &str, variables: &[(&str, &str)]) -> String {
    let (name, operation) = expression.split_at(expression.find(':').unwrap_or(expression.len()));
    let value = variables
        .iter()
        .find(|(variable, _)| *variable == name)
        .map(|(_, value)| *value)
        .filter(|value| !value.is_empty());
    match (value, operation.get(..2), operation.get(2..)) {
        (Some(value), _, _) => value.to_owned(),
        (None, Some(":-"), Some(default)) => default.to_owned(),
        (None, Some(":?"), Some(message)) => panic!("{name}: {message}"),
        (None, None, _) => String::new(),
        (None, _, _) => panic!("an interpolation this test does not know: ${{{expression}}}"),
    }
}
