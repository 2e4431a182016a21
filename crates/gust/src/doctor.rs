//! `gust doctor`: what this host offers execution environments, and what each missing
//! protection means for a user. The same facts the server prints at start, as a table.

use std::path::Path;

use anyhow::Result;

struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    meaning: &'static str,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn checks() -> Vec<Check> {
    let uid = nix::unistd::geteuid();
    let mut checks = vec![Check {
        name: "privileges",
        ok: uid.is_root(),
        detail: if uid.is_root() { "root".into() } else { format!("uid {uid} (not root)") },
        meaning: "without root, Gust cannot create cgroups (unless a hierarchy is delegated) nor, later, namespaces",
    }];
    let userns = read("/proc/sys/user/max_user_namespaces")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    checks.push(Check {
        name: "user namespaces",
        ok: userns > 0,
        detail: format!("max_user_namespaces = {userns}"),
        meaning: "needed for isolation without root (namespaces are not used by Gust yet)",
    });
    let root = Path::new("/sys/fs/cgroup");
    let (version, controllers) = if root.join("cgroup.controllers").exists() {
        (
            "v2",
            read("/sys/fs/cgroup/cgroup.controllers")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        )
    } else {
        let present: Vec<&str> = ["memory", "cpu", "pids", "freezer"]
            .into_iter()
            .filter(|c| root.join(c).join("tasks").exists())
            .collect();
        ("v1", present.join(" "))
    };
    // Probing creates and removes an empty cgroup: the real test of writability.
    let probe =
        gust_sandbox::cgroup::Cgroups::open(root, &format!("doctor-{}", std::process::id()));
    let writable = match &probe {
        Ok(cgroups) => {
            cgroups.close();
            Ok(())
        }
        Err(reason) => Err(reason.clone()),
    };
    checks.push(Check {
        name: "cgroups",
        ok: writable.is_ok(),
        detail: match &writable {
            Ok(()) => format!("{version}, writable; controllers: {controllers}"),
            Err(reason) => format!("{version}: {reason}"),
        },
        meaning: "memory limit (OOM as Runtime.OutOfMemory), CPU share, process limit; without them memory is kept by a watchdog and CPU/process limits are off",
    });
    let freezer = match version {
        "v2" => writable.is_ok(),
        _ => writable.is_ok() && root.join("freezer/tasks").exists(),
    };
    checks.push(Check {
        name: "freezer",
        ok: freezer,
        detail: if freezer { "available".into() } else { "unavailable".into() },
        meaning: "idle environments are frozen (no CPU, background threads stop); without it they keep running between invokes",
    });
    let seccomp =
        read("/proc/self/status").is_some_and(|s| s.lines().any(|l| l.starts_with("Seccomp:")));
    checks.push(Check {
        name: "seccomp",
        ok: seccomp,
        detail: if seccomp {
            "supported by the kernel (not applied by Gust yet)".into()
        } else {
            "unsupported".into()
        },
        meaning:
            "will refuse system calls functions have no business making (mount, ptrace, bpf, ...)",
    });
    checks.push(Check {
        name: "isolation",
        ok: false,
        detail: "not implemented yet: no pid/mount/network namespaces, no /var/task view, no tmpfs /tmp, no separate user".into(),
        meaning: "functions run as the server's user and can read what it can read: deploy only code you trust",
    });
    checks.push(Check {
        name: "network",
        ok: true,
        detail: "host network (outbound connections allowed, as Lambda outside a VPC)".into(),
        meaning: "there is no network isolation between functions yet",
    });
    checks
}

/// Prints the table; exits 0 (it reports, it does not judge).
pub fn run() -> Result<()> {
    let checks = checks();
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(8);
    println!("{:<width$}  {:<3}  DETAIL", "CHECK", "OK");
    for check in &checks {
        println!(
            "{:<width$}  {:<3}  {}",
            check.name,
            if check.ok { "yes" } else { "no" },
            check.detail
        );
        if !check.ok {
            println!("{:<width$}       means: {}", "", check.meaning);
        }
    }
    Ok(())
}
