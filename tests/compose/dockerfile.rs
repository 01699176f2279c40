//! A Dockerfile stage as the container sees it: the `ENV` it sets, its
//! `ENTRYPOINT` and its `HEALTHCHECK` command, its parent stages' included
//! (a stage `FROM` another stage inherits them).

/// What a target gives its containers.
#[derive(Debug, Default, Clone)]
pub struct Stage {
    /// `ENV` pairs, parents' first.
    pub env: Vec<(String, String)>,
    /// `ENTRYPOINT` in exec form.
    pub entrypoint: Vec<String>,
    /// `HEALTHCHECK ... CMD` in exec form.
    pub healthcheck: Vec<String>,
}

/// The stage `target` of `dockerfile`.
pub fn stage(dockerfile: &str, target: &str) -> Stage {
    let instructions = instructions(dockerfile);
    let from = instructions
        .iter()
        .position(|line| stage_name(line).as_deref() == Some(target))
        .unwrap_or_else(|| panic!("the Dockerfile has no stage {target}"));
    let base = instructions[from]
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut stage = if instructions
        .iter()
        .any(|line| stage_name(line).as_deref() == Some(&*base))
    {
        self::stage(dockerfile, &base)
    } else {
        Stage::default()
    };
    for line in instructions[from + 1..]
        .iter()
        .take_while(|line| !line.starts_with("FROM "))
    {
        apply(&mut stage, line);
    }
    stage
}

fn apply(stage: &mut Stage, line: &str) {
    if let Some(pairs) = line.strip_prefix("ENV ") {
        stage.env.extend(pairs.split_whitespace().map(|pair| {
            let (name, value) = pair.split_once('=').expect("ENV NAME=value");
            (name.to_owned(), value.to_owned())
        }));
    } else if let Some(exec) = line.strip_prefix("ENTRYPOINT ") {
        stage.entrypoint = exec_form(exec);
    } else if let Some(healthcheck) = line.strip_prefix("HEALTHCHECK ") {
        let (_, command) = healthcheck
            .split_once(" CMD ")
            .expect("HEALTHCHECK [options] CMD [...]");
        stage.healthcheck = exec_form(command);
    }
}

fn exec_form(json: &str) -> Vec<String> {
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("exec form expected, {json:?}: {e}"))
}

/// `FROM image AS name`'s name.
fn stage_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["FROM", _, as_word, name] if as_word.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
        _ => None,
    }
}

/// The instructions, continuation lines joined, comments and blank lines
/// left out.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines().map(str::trim).filter(|line| !line.starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(continued) => current.push_str(continued),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    instructions.push(current.trim().to_owned());
                }
                current.clear();
            }
        }
    }
    instructions
}
