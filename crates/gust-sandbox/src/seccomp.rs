//! The system calls a function has no business making, refused with `EPERM`: mounting,
//! tracing other processes, loading kernel code, eBPF, keyrings, rebooting, creating or
//! entering namespaces, changing the clock, and the like. Applied (with `no_new_privs`) to
//! the runtime process before it executes, so everything it starts inherits it.

use seccompiler::{sock_filter, BpfProgram};

/// Refused outright.
const DENIED: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_reboot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_perf_event_open,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_userfaultfd,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
];

/// Refused outright where they exist (port I/O: x86 only).
#[cfg(target_arch = "x86_64")]
const DENIED_HERE: &[i64] = &[libc::SYS_iopl, libc::SYS_ioperm];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_HERE: &[i64] = &[];

// The clone flags are read as the low half of the first argument.
#[cfg(target_endian = "big")]
compile_error!("the seccomp filter assumes a little-endian architecture");

/// `clone` flags that create namespaces.
const NAMESPACE_FLAGS: &[i32] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// What the filter answers one system call with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// `EPERM`.
    Deny,
    /// `ENOSYS`: `clone3`, so the C library falls back to `clone`, whose flags the filter
    /// can inspect (`clone3` passes them in memory).
    NoSys,
    /// `EPERM` when any of [`NAMESPACE_FLAGS`] is set in the first argument.
    CloneFlags,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06;
/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// The low half of the first argument (little-endian: every architecture served here).
const ARG0_LOW_OFFSET: u32 = 16;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// At most this many system calls are compared one by one at a leaf of the search tree.
const LEAF: usize = 3;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn errno(number: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (u32::try_from(number).unwrap_or(1) & libc::SECCOMP_RET_DATA)
}

/// The running architecture's `AUDIT_ARCH_*`.
fn audit_arch() -> Result<u32, String> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(0xC000_003E),
        "aarch64" => Ok(0xC000_00B7),
        "riscv64" => Ok(0xC000_00F3),
        other => Err(format!("seccomp: unsupported architecture: {other}")),
    }
}

/// The filter to install, as a list (one program) so that what installs filters (the
/// zygote's forks too) does not assume how many there are.
///
/// One program whose system call numbers are found by binary search: attaching a filter
/// costs the kernel an emulation of it for every system call number (the action cache),
/// so the cost grows with the instructions an allowed call goes through — ~220 µs for a
/// linear list of the ~45 numbers below against ~110 µs for the tree, on a fresh cold
/// start's critical path (its init confines itself before it starts the runtime; a staged
/// or primed init attaches most of it ahead of need, see [`split_filters`]).
pub fn filters() -> Result<Vec<BpfProgram>, String> {
    Ok(vec![program(audit_arch()?, &verdicts(&[])?)?])
}

/// The system calls an environment's init still makes once a staged or primed spare is
/// handed its environment: the function's binds, `/tmp`, the pivot, the hostname.
pub const HAND_OVER_CALLS: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_sethostname,
];

/// [`filters`] in two parts for an init that confines itself in two steps: `early`
/// decides every call as `filters` does but allows `late_calls`, `late` refuses only
/// them. Installed together they answer every call as `filters` does (the kernel takes
/// the most restrictive verdict of a process's filters), and attaching `late` at the
/// hand-over costs the kernel an emulation of a few instructions rather than of the whole
/// filter (~110 µs on a cold start's critical path). `late_calls` must be calls `filters`
/// refuses.
pub fn split_filters(late_calls: &[i64]) -> Result<(Vec<BpfProgram>, Vec<BpfProgram>), String> {
    let arch = audit_arch()?;
    if let Some(n) = late_calls
        .iter()
        .find(|n| !DENIED.iter().chain(DENIED_HERE).any(|d| d == *n))
    {
        return Err(format!("seccomp: {n} is not a refused system call"));
    }
    let mut late: Vec<(u32, Verdict)> = late_calls
        .iter()
        .map(|n| u32::try_from(*n).map(|n| (n, Verdict::Deny)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("seccomp: {e}"))?;
    late.sort_unstable_by_key(|(n, _)| *n);
    late.dedup_by_key(|(n, _)| *n);
    Ok((
        vec![program(arch, &verdicts(late_calls)?)?],
        vec![program(arch, &late)?],
    ))
}

/// Every system call the filter does not allow, but those in `except`, with its verdict,
/// sorted by number.
fn verdicts(except: &[i64]) -> Result<Vec<(u32, Verdict)>, String> {
    let mut calls: Vec<(u32, Verdict)> = DENIED
        .iter()
        .chain(DENIED_HERE)
        .filter(|n| !except.contains(n))
        .map(|n| (*n, Verdict::Deny))
        .chain([
            (libc::SYS_clone, Verdict::CloneFlags),
            (libc::SYS_clone3, Verdict::NoSys),
        ])
        .map(|(n, verdict)| {
            u32::try_from(n)
                .map(|n| (n, verdict))
                .map_err(|e| format!("seccomp: {e}"))
        })
        .collect::<Result<_, _>>()?;
    calls.sort_unstable_by_key(|(n, _)| *n);
    calls.dedup_by_key(|(n, _)| *n);
    Ok(calls)
}

/// Another architecture ends the process; on x86-64, x32 system calls (the x86-64
/// architecture with bit 30 set in the number, which a check by number would not see)
/// get `ENOSYS` as on a kernel without x32; then the search for the number in `calls`.
fn program(audit_arch: u32, calls: &[(u32, Verdict)]) -> Result<BpfProgram, String> {
    let mut program = vec![
        op(LD_W_ABS, 0, 0, ARCH_OFFSET),
        op(JEQ_K, 1, 0, audit_arch),
        op(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        op(LD_W_ABS, 0, 0, NR_OFFSET),
    ];
    if cfg!(target_arch = "x86_64") {
        program.extend([
            op(JGE_K, 0, 1, X32_SYSCALL_BIT),
            op(RET_K, 0, 0, errno(libc::ENOSYS)),
        ]);
    }
    program.extend(search(calls)?);
    Ok(program)
}

/// Instructions that end with the verdict for the number in the accumulator: a
/// comparison splitting `calls` (sorted) in halves, each half after it; a few compared
/// one by one at the leaves. Every path returns.
fn search(calls: &[(u32, Verdict)]) -> Result<Vec<sock_filter>, String> {
    if calls.len() <= LEAF {
        let mut block = Vec::new();
        for (number, verdict) in calls {
            let action = action(*verdict);
            let skip = u8::try_from(action.len()).map_err(|e| format!("seccomp: {e}"))?;
            block.push(op(JEQ_K, 0, skip, *number));
            block.extend(action);
        }
        block.push(op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
        return Ok(block);
    }
    let (low, high) = calls.split_at(calls.len() / 2);
    let low = search(low)?;
    // Forward jumps only, of at most 255: the numbers ≥ the upper half's first skip the
    // lower half's block.
    let skip = u8::try_from(low.len()).map_err(|_| "seccomp: filter too large".to_owned())?;
    let mut block = vec![op(JGE_K, skip, 0, high[0].0)];
    block.extend(low);
    block.extend(search(high)?);
    Ok(block)
}

fn action(verdict: Verdict) -> Vec<sock_filter> {
    match verdict {
        Verdict::Deny => vec![op(RET_K, 0, 0, errno(libc::EPERM))],
        Verdict::NoSys => vec![op(RET_K, 0, 0, errno(libc::ENOSYS))],
        Verdict::CloneFlags => {
            let mask = NAMESPACE_FLAGS.iter().fold(0u32, |m, f| m | *f as u32);
            vec![
                op(LD_W_ABS, 0, 0, ARG0_LOW_OFFSET),
                op(JSET_K, 0, 1, mask),
                op(RET_K, 0, 0, errno(libc::EPERM)),
                op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` as the kernel would on one system call (the classic BPF subset it
    /// uses), counting the instructions executed.
    fn run(program: &[sock_filter], arch: u32, nr: u32, arg0: u64) -> (u32, usize) {
        let word = |offset: u32| match offset {
            NR_OFFSET => nr,
            ARCH_OFFSET => arch,
            ARG0_LOW_OFFSET => arg0 as u32,
            other => panic!("load of offset {other}"),
        };
        let (mut pc, mut accumulator, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let op = &program[pc];
            steps += 1;
            let taken = match op.code {
                LD_W_ABS => {
                    accumulator = word(op.k);
                    pc += 1;
                    continue;
                }
                RET_K => return (op.k, steps),
                JEQ_K => accumulator == op.k,
                JGE_K => accumulator >= op.k,
                JSET_K => accumulator & op.k != 0,
                other => panic!("instruction {other:#x}"),
            };
            pc += 1 + usize::from(if taken { op.jt } else { op.jf });
        }
    }

    #[test]
    fn every_system_call_gets_its_verdict() {
        let programs = filters().unwrap();
        assert_eq!(programs.len(), 1);
        let program = &programs[0];
        let arch = audit_arch().unwrap();
        let denied: Vec<u32> = DENIED
            .iter()
            .chain(DENIED_HERE)
            .map(|n| *n as u32)
            .collect();
        let mut longest = 0;
        for nr in 0..1024u32 {
            let (verdict, steps) = run(program, arch, nr, 0);
            longest = longest.max(steps);
            let expected = if denied.contains(&nr) {
                errno(libc::EPERM)
            } else if nr == libc::SYS_clone3 as u32 {
                errno(libc::ENOSYS)
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            assert_eq!(verdict, expected, "system call {nr}");
        }
        // The point of the tree: a handful of comparisons, not one per number listed.
        assert!(longest <= 16, "{longest} instructions");
        // `clone` is refused any namespace flag, alone or among others, and allowed the rest.
        let clone = libc::SYS_clone as u32;
        let thread =
            (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_THREAD) as u64;
        assert_eq!(run(program, arch, clone, thread).0, libc::SECCOMP_RET_ALLOW);
        assert_eq!(
            run(program, arch, clone, libc::SIGCHLD as u64).0,
            libc::SECCOMP_RET_ALLOW
        );
        for flag in NAMESPACE_FLAGS {
            for arg0 in [*flag as u64, *flag as u64 | thread, *flag as u64 | 1 << 40] {
                assert_eq!(
                    run(program, arch, clone, arg0).0,
                    errno(libc::EPERM),
                    "{arg0:#x}"
                );
            }
        }
        // Another architecture ends the process, whatever the call.
        for nr in [0, clone, libc::SYS_mount as u32] {
            assert_eq!(
                run(program, 0x4000_0003, nr, 0).0,
                libc::SECCOMP_RET_KILL_PROCESS
            );
        }
        if cfg!(target_arch = "x86_64") {
            // x32 numbers: bit 30 set.
            for nr in [
                X32_SYSCALL_BIT,
                X32_SYSCALL_BIT | 165,
                X32_SYSCALL_BIT | 513,
            ] {
                assert_eq!(run(program, arch, nr, 0).0, errno(libc::ENOSYS), "{nr:#x}");
            }
        }
    }

    /// The kernel's verdict for a process with `filters` installed (oldest first): the
    /// most restrictive action wins, and of equal ones the newest filter's.
    fn stacked(filters: &[&[sock_filter]], arch: u32, nr: u32, arg0: u64) -> u32 {
        let action = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
        let mut verdict = libc::SECCOMP_RET_ALLOW;
        for filter in filters.iter().rev() {
            let this = run(filter, arch, nr, arg0).0;
            if action(this) < action(verdict) {
                verdict = this;
            }
        }
        verdict
    }

    #[test]
    fn the_split_filters_together_decide_as_the_whole() {
        let whole = filters().unwrap();
        let (early, late) = split_filters(HAND_OVER_CALLS).unwrap();
        let arch = audit_arch().unwrap();
        let clone = libc::SYS_clone as u32;
        let mut numbers: Vec<u32> = (0..1024).collect();
        numbers.extend([X32_SYSCALL_BIT, X32_SYSCALL_BIT | 165]);
        for a in [arch, 0x4000_0003] {
            for &nr in &numbers {
                for arg0 in [0, libc::CLONE_NEWNS as u64, libc::SIGCHLD as u64] {
                    assert_eq!(
                        stacked(&[&early[0], &late[0]], a, nr, arg0),
                        run(&whole[0], a, nr, arg0).0,
                        "arch {a:#x}, call {nr}, {arg0:#x}"
                    );
                }
            }
        }
        // Before the hand-over, the init may still make those calls, and only those.
        for n in HAND_OVER_CALLS {
            assert_eq!(
                run(&early[0], arch, *n as u32, 0).0,
                libc::SECCOMP_RET_ALLOW
            );
        }
        assert_eq!(
            run(&early[0], arch, libc::SYS_setns as u32, 0).0,
            errno(libc::EPERM)
        );
        assert_eq!(
            run(&early[0], arch, clone, libc::CLONE_NEWNS as u64).0,
            errno(libc::EPERM)
        );
        // The late part is small: its attachment is what the hand-over pays for.
        assert!(late[0].len() < 20, "{} instructions", late[0].len());
        assert!(split_filters(&[libc::SYS_read]).is_err());
    }
}
