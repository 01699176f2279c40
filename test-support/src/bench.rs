//! What every benchmark shares: the machine line it prints first in
//! BENCHMARKS.md, and the CPU time the process has used.

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

/// The CPU time this process has used so far, user and system, all its
/// threads together: fields 14 and 15 of `/proc/self/stat`, in clock ticks
/// of 10 ms (Linux's `USER_HZ`). `None` where there is no such file.
pub fn process_cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces;
    // the fields after it are the 3rd onwards.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(std::time::Duration::from_millis((user + system) * 10))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// Half a second of spinning shows in the process's CPU time, and no
    /// more than the cores could have given it in that time (so the unit
    /// is right). On a loaded machine the spinning thread gets at least a
    /// fifth of a core.
    #[test]
    fn the_cpu_time_of_a_busy_process_grows_by_what_it_used() {
        let before = super::process_cpu().unwrap();
        let started = Instant::now();
        let mut spins = 0u64;
        while started.elapsed() < Duration::from_millis(500) {
            spins = std::hint::black_box(spins + 1);
        }
        let used = super::process_cpu().unwrap() - before;
        let wall = started.elapsed();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        assert!(used >= Duration::from_millis(100), "{used:?} after {spins} spins");
        assert!(used <= wall * cores + Duration::from_millis(20), "{used:?} in {wall:?}");
    }
}
