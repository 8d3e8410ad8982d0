//! The seccomp filter of a sandbox without network: `socket()` fails with
//! EPERM for every family but `AF_UNIX`, and so does `io_uring_setup`
//! (io_uring can open sockets without the `socket` syscall).
//!
//! Landlock only knows TCP (connect and bind); this is what keeps UDP,
//! raw sockets and the other families out. Local Unix sockets stay: build
//! tools and language servers talk over them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The compiled program, the same for every command: built once.
pub(super) fn no_network() -> Result<&'static BpfProgram, String> {
    static PROGRAM: OnceLock<Result<BpfProgram, String>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| compile().map_err(|e| format!("cannot build the seccomp filter: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

fn compile() -> Result<BpfProgram, seccompiler::BackendError> {
    let not_unix = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        libc::AF_UNIX as u64,
    )?;
    let rules: BTreeMap<i64, Vec<SeccompRule>> = [
        (libc::SYS_socket, vec![SeccompRule::new(vec![not_unix])?]),
        // An empty list matches every call.
        (libc::SYS_io_uring_setup, Vec::new()),
    ]
    .into_iter()
    .collect();
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    // A call of another architecture's ABI (32-bit x86 on x86_64, which
    // has `socketcall`) does not match the filter's and is refused by
    // seccompiler's architecture check.
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    filter.try_into()
}

/// Installs `program` on the calling thread. Called in the forked child
/// before exec: it makes only a prctl and the seccomp syscall.
pub(super) fn apply(program: &BpfProgram) -> std::io::Result<()> {
    seccompiler::apply_filter(program).map_err(|e| match e {
        seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
        _ => std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}
