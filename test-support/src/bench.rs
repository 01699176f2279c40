//! What every benchmark prints first: the machine line of BENCHMARKS.md.

/// The machine, the time, the load and the commit of the run.
pub fn machine() -> String {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split(':').nth(1))
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    };
    let memory_kib: u64 = field(&read("/proc/meminfo"), "MemTotal")
        .trim_end_matches(" kB")
        .parse()
        .unwrap_or(0);
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "Machine: {} cores, {}, {} GiB; {}, 1-minute load {} at the start; commit {}.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        field(&read("/proc/cpuinfo"), "model name"),
        memory_kib / 1024 / 1024,
        run("date", &["-u", "+%F %H:%M UTC"]),
        read("/proc/loadavg").split(' ').next().unwrap_or(""),
        run("git", &["describe", "--always", "--dirty"])
    )
}
