//! Compiling an OCI seccomp profile to a classic BPF program.
//!
//! Shape of the program (written by hand: no crate emits per-syscall actions with a search
//! tree, see the module docs of [`super`]):
//!
//! ```text
//!   ld  [arch]
//!   jeq AUDIT_ARCH_<native>  → section 0      (x86_64 or aarch64)
//!   jeq AUDIT_ARCH_I386      → section 1      (only if the profile lists SCMP_ARCH_X86)
//!   ret KILL_PROCESS                          (any other ABI: x32, arm32, …)
//! section:
//!   ld  [nr]
//!   binary search on nr over runs of numbers sharing one outcome (jge k)
//!   leaf: ret ACTION, or the syscall's argument rules then its fallback ret
//! ```
//!
//! Numbers above the highest syscall the profile names get `ERRNO(ENOSYS)` unless the
//! default action lets syscalls through (runc's `-ENOSYS` stub: libc then falls back from,
//! say, `fchmodat2` to `fchmodat` instead of failing with `EPERM`). On x86_64, x32 numbers
//! (bit 30 set, except the `-1` that ptracers use) take the bad-architecture path.
//!
//! The program is generated back to front, so every jump target is already placed when a
//! jump is emitted; a jump farther than the 255 instructions a conditional jump can reach
//! goes through an unconditional `ja` trampoline.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};
use seccompiler::{sock_filter, BpfProgram};

use super::syscalls::Arch;
use super::{Result, SeccompError, BPF_MAXINSNS};

// Instruction classes and fields from <linux/bpf_common.h>.
const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_ALU: u16 = 0x04;
const BPF_AND: u16 = 0x50;
const BPF_JMP: u16 = 0x05;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;

// Offsets into `struct seccomp_data` (<linux/seccomp.h>); arguments are little-endian u64s
// on every architecture berth supports.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

// Return values (<linux/seccomp.h>).
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_DATA: u32 = 0x0000_ffff;
const RET_ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// x86_64 marks x32 syscalls with this bit of the number (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What the kernel does with a syscall whose ABI has no section here. x32 and 32-bit ARM
/// binaries die instead of running unfiltered.
const RET_BAD_ARCH: u32 = RET_KILL_PROCESS;

/// Compiles `profile` for the host architecture (and i386 on x86_64 hosts when the profile
/// lists `SCMP_ARCH_X86`).
///
/// Syscall names the host's ABIs do not have are skipped, as libseccomp does, so one
/// profile serves every architecture. Within one syscall, rules with argument conditions are
/// tried first, in profile order; then its unconditional rule, if any; then the default.
///
/// ```
/// use berth_runtime::seccomp;
/// let profile = seccomp::docker_default(&seccomp::DOCKER_DEFAULT_CAPS);
/// let program = seccomp::compile(&profile).unwrap();
/// assert!(program.len() < seccomp::BPF_MAXINSNS);
/// ```
pub fn compile(profile: &LinuxSeccomp) -> Result<BpfProgram> {
    let native = Arch::native().ok_or(SeccompError::UnsupportedHostArch {
        arch: std::env::consts::ARCH,
    })?;
    let default = action_code(profile.default_action(), profile.default_errno_ret())?;
    let syscalls = profile.syscalls().as_deref().unwrap_or_default();
    let (arches, count) = Arch::sections(native, profile.architectures().as_deref());

    let mut e = Emitter::with_capacity(1024);
    let mut entries = [0usize; 2];
    for i in (0..count).rev() {
        let plan = Plan::build(arches[i], syscalls, default)?;
        entries[i] = e.section(&plan);
    }
    let mut next = e.ret(RET_BAD_ARCH);
    for i in (0..count).rev() {
        next = e.jump(BPF_JEQ, arches[i].audit(), entries[i], next);
    }
    e.fall_into(next);
    e.load(DATA_ARCH);
    e.finish()
}

/// The kernel return value for an OCI action.
fn action_code(action: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<u32> {
    // runc's default return code for ERRNO and TRACE without errnoRet is EPERM.
    let data = errno_ret.unwrap_or(libc::EPERM as u32) & RET_DATA;
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        // Needs SECCOMP_FILTER_FLAG_NEW_LISTENER and a seccomp agent: not implemented.
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction {
                action: "SCMP_ACT_NOTIFY",
            })
        }
    })
}

/// Whether `code` lets the syscall run; such defaults get no `-ENOSYS` stub (as in runc,
/// a tracer is trusted to handle new syscalls itself).
fn lets_through(code: u32) -> bool {
    code == RET_ALLOW || code == RET_LOG || code & !RET_DATA == RET_TRACE
}

/// A comparison the kernel can do on one syscall argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value`: the OCI `value` is the mask, `valueTwo` the datum.
    MaskedEq {
        mask: u64,
    },
}

/// One argument condition.
#[derive(Clone, Copy, Debug)]
struct Cond {
    index: u8,
    op: Op,
    value: u64,
}

/// Conditions that must all hold for `action` to be returned.
#[derive(Clone, Debug)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

/// The outcome for one syscall number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Return this value.
    Ret(u32),
    /// Evaluate `Plan::leaves[i]`.
    Cond(u16),
}

/// A syscall with argument rules.
#[derive(Debug)]
struct CondLeaf {
    rules: Vec<Rule>,
    /// The syscall's unconditional action, if it has one.
    fallback: Option<u32>,
}

/// A run of syscall numbers, from `start` up to the next segment's start, sharing a slot.
#[derive(Clone, Copy, Debug)]
struct Segment {
    start: u32,
    slot: Slot,
}

/// One architecture's section, before emission.
#[derive(Debug)]
struct Plan {
    arch: Arch,
    default: u32,
    leaves: Vec<CondLeaf>,
    segments: Vec<Segment>,
}

impl Plan {
    fn build(arch: Arch, syscalls: &[LinuxSyscall], default: u32) -> Result<Plan> {
        let mut slots = vec![Slot::Ret(default); usize::from(arch.max_nr()) + 1];
        let mut leaves: Vec<CondLeaf> = Vec::new();
        let mut max_listed: Option<u16> = None;

        for sys in syscalls {
            let action = action_code(sys.action(), sys.errno_ret())?;
            let rules = rules_of(sys, action)?;
            for name in sys.names() {
                let Some(nr) = arch.syscall_nr(name) else {
                    tracing::trace!(syscall = %name, ?arch, "seccomp: syscall unknown on this architecture, skipped");
                    continue;
                };
                max_listed = max_listed.max(Some(nr));
                // libseccomp refuses rules whose action is the default one; runc skips them.
                if action == default {
                    continue;
                }
                let slot = &mut slots[usize::from(nr)];
                match (*slot, rules.is_empty()) {
                    (Slot::Ret(_), true) => {
                        if *slot == Slot::Ret(default) {
                            *slot = Slot::Ret(action);
                        }
                    }
                    (Slot::Ret(current), false) => {
                        let fallback = (current != default).then_some(current);
                        leaves.push(CondLeaf {
                            rules: rules.clone(),
                            fallback,
                        });
                        *slot = Slot::Cond((leaves.len() - 1) as u16);
                    }
                    (Slot::Cond(i), true) => {
                        let leaf = &mut leaves[usize::from(i)];
                        leaf.fallback.get_or_insert(action);
                    }
                    (Slot::Cond(i), false) => {
                        leaves[usize::from(i)].rules.extend_from_slice(&rules);
                    }
                }
            }
        }

        // Runs of equal outcomes, then the numbers above everything the profile names.
        let mut segments: Vec<Segment> = Vec::with_capacity(128);
        let mut push = |start: u32, slot: Slot| match segments.last() {
            Some(last) if last.slot == slot && matches!(slot, Slot::Ret(_)) => {}
            _ => segments.push(Segment { start, slot }),
        };
        let tail = match max_listed {
            Some(max) => {
                for (nr, slot) in slots[..=usize::from(max)].iter().enumerate() {
                    push(nr as u32, *slot);
                }
                let tail = if lets_through(default) {
                    default
                } else {
                    RET_ENOSYS
                };
                push(u32::from(max) + 1, Slot::Ret(tail));
                tail
            }
            None => {
                push(0, Slot::Ret(default));
                default
            }
        };
        if arch == Arch::X86_64 {
            push(X32_SYSCALL_BIT, Slot::Ret(RET_BAD_ARCH));
            push(u32::MAX, Slot::Ret(tail));
        }
        Ok(Plan {
            arch,
            default,
            leaves,
            segments,
        })
    }
}

/// The argument rules of one profile entry, split the way runc does: several conditions on
/// the same argument become separate (ORed) rules, otherwise all conditions form one rule.
fn rules_of(sys: &LinuxSyscall, action: u32) -> Result<Vec<Rule>> {
    let Some(args) = sys.args().as_deref().filter(|a| !a.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut per_index = [0u8; 6];
    let mut conds = Vec::with_capacity(args.len());
    for arg in args {
        let index = arg.index();
        if index > 5 {
            return Err(SeccompError::InvalidArgIndex {
                syscall: sys.names().first().cloned().unwrap_or_default(),
                index,
            });
        }
        per_index[index] = per_index[index].saturating_add(1);
        let (op, value) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpEq => (Op::Eq, arg.value()),
            LinuxSeccompOperator::ScmpCmpNe => (Op::Ne, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (Op::Lt, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (Op::Le, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (Op::Gt, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (Op::Ge, arg.value()),
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                Op::MaskedEq { mask: arg.value() },
                arg.value_two().unwrap_or(0),
            ),
        };
        conds.push(Cond {
            index: index as u8,
            op,
            value,
        });
    }
    if per_index.iter().any(|n| *n > 1) {
        Ok(conds
            .into_iter()
            .map(|c| Rule {
                conds: vec![c],
                action,
            })
            .collect())
    } else {
        Ok(vec![Rule { conds, action }])
    }
}

/// Builds a BPF program from its last instruction to its first.
///
/// Positions are indices into `rev` (0 = the program's last instruction). An instruction at
/// position `p` that jumps to position `t < p` encodes the offset `p - 1 - t`.
struct Emitter {
    rev: Vec<sock_filter>,
    /// The nearest `ret` emitted for each return value, to share it between leaves.
    rets: Vec<(u32, usize)>,
}

/// How far back a shared `ret` may be before a new copy is cheaper than a trampoline.
const RET_REUSE_DISTANCE: usize = 200;

impl Emitter {
    fn with_capacity(n: usize) -> Emitter {
        Emitter {
            rev: Vec::with_capacity(n),
            rets: Vec::with_capacity(8),
        }
    }

    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> usize {
        self.rev.push(sock_filter { code, jt, jf, k });
        self.rev.len() - 1
    }

    /// `ld [offset]` (32-bit word of `seccomp_data`), falling through to the last emitted.
    fn load(&mut self, offset: u32) -> usize {
        self.push(BPF_LD | BPF_W | BPF_ABS, 0, 0, offset)
    }

    /// A position that returns `value`: a recent shared `ret`, or a new one.
    fn ret(&mut self, value: u32) -> usize {
        let here = self.rev.len();
        if let Some((_, pos)) = self
            .rets
            .iter()
            .find(|(v, pos)| *v == value && here - pos <= RET_REUSE_DISTANCE)
        {
            return *pos;
        }
        let pos = self.push(BPF_RET | BPF_K, 0, 0, value);
        match self.rets.iter_mut().find(|(v, _)| *v == value) {
            Some(entry) => entry.1 = pos,
            None => self.rets.push((value, pos)),
        }
        pos
    }

    /// `jmp op k, jt, jf`, with `ja` trampolines for targets out of reach.
    fn jump(&mut self, op: u16, k: u32, mut jt: usize, mut jf: usize) -> usize {
        loop {
            let here = self.rev.len();
            let (dt, df) = (here - 1 - jt, here - 1 - jf);
            if dt > 255 {
                jt = self.push(BPF_JMP | BPF_JA, 0, 0, dt as u32);
            } else if df > 255 {
                jf = self.push(BPF_JMP | BPF_JA, 0, 0, df as u32);
            } else {
                return self.push(BPF_JMP | op | BPF_K, dt as u8, df as u8, k);
            }
        }
    }

    /// Makes `target` the instruction right after the next one emitted.
    fn fall_into(&mut self, target: usize) {
        let here = self.rev.len();
        if target + 1 != here {
            self.push(BPF_JMP | BPF_JA, 0, 0, (here - 1 - target) as u32);
        }
    }

    /// Emits one architecture's section; returns its entry.
    fn section(&mut self, plan: &Plan) -> usize {
        let tree = self.search(plan, &plan.segments);
        self.fall_into(tree);
        self.load(DATA_NR)
    }

    /// Binary search over `segments` (non-empty) on the syscall number in the accumulator.
    fn search(&mut self, plan: &Plan, segments: &[Segment]) -> usize {
        if let [only] = segments {
            return match only.slot {
                Slot::Ret(value) => self.ret(value),
                Slot::Cond(i) => self.leaf(plan, &plan.leaves[usize::from(i)]),
            };
        }
        let mid = segments.len() / 2;
        let upper = self.search(plan, &segments[mid..]);
        let lower = self.search(plan, &segments[..mid]);
        self.jump(BPF_JGE, segments[mid].start, upper, lower)
    }

    /// A syscall's argument rules, in order, then its fallback.
    fn leaf(&mut self, plan: &Plan, leaf: &CondLeaf) -> usize {
        let fallback = leaf.fallback.unwrap_or(plan.default);
        let mut next = self.ret(fallback);
        for rule in leaf.rules.iter().rev() {
            if rule.action == fallback {
                continue;
            }
            let mut pass = self.ret(rule.action);
            for cond in rule.conds.iter().rev() {
                pass = self.cond(plan.arch.is_64bit(), cond, pass, next);
            }
            next = pass;
        }
        next
    }

    /// One condition: continue at `pass` if it holds, else at `fail`. 64-bit arguments are
    /// compared as (high word, low word); on 32-bit ABIs the high word is zero.
    fn cond(&mut self, is64: bool, c: &Cond, pass: usize, fail: usize) -> usize {
        let lo_off = DATA_ARGS + 8 * u32::from(c.index);
        let hi_off = lo_off + 4;
        let (hv, lv) = ((c.value >> 32) as u32, c.value as u32);
        match c.op {
            Op::Eq => {
                self.jump(BPF_JEQ, lv, pass, fail);
                let lo = self.load(lo_off);
                if !is64 {
                    return if hv == 0 { lo } else { fail };
                }
                self.jump(BPF_JEQ, hv, lo, fail);
                self.load(hi_off)
            }
            Op::Ne => {
                self.jump(BPF_JEQ, lv, fail, pass);
                let lo = self.load(lo_off);
                if !is64 {
                    return if hv == 0 { lo } else { pass };
                }
                self.jump(BPF_JEQ, hv, lo, pass);
                self.load(hi_off)
            }
            Op::Gt | Op::Ge => {
                let low_op = if c.op == Op::Gt { BPF_JGT } else { BPF_JGE };
                self.jump(low_op, lv, pass, fail);
                let lo = self.load(lo_off);
                if !is64 {
                    return if hv == 0 { lo } else { fail };
                }
                let eq = self.jump(BPF_JEQ, hv, lo, fail);
                self.jump(BPF_JGT, hv, pass, eq);
                self.load(hi_off)
            }
            Op::Lt | Op::Le => {
                // arg < v  ⇔  !(arg >= v);  arg <= v  ⇔  !(arg > v)
                let low_op = if c.op == Op::Lt { BPF_JGE } else { BPF_JGT };
                self.jump(low_op, lv, fail, pass);
                let lo = self.load(lo_off);
                if !is64 {
                    return if hv == 0 { lo } else { pass };
                }
                let eq = self.jump(BPF_JEQ, hv, lo, pass);
                self.jump(BPF_JGT, hv, fail, eq);
                self.load(hi_off)
            }
            Op::MaskedEq { mask } => {
                let (hm, lm) = ((mask >> 32) as u32, mask as u32);
                self.jump(BPF_JEQ, lv, pass, fail);
                self.push(BPF_ALU | BPF_AND | BPF_K, 0, 0, lm);
                let lo = self.load(lo_off);
                if !is64 || hm == 0 {
                    // The high word of the masked argument is zero.
                    return if hv == 0 { lo } else { fail };
                }
                self.jump(BPF_JEQ, hv, lo, fail);
                self.push(BPF_ALU | BPF_AND | BPF_K, 0, 0, hm);
                self.load(hi_off)
            }
        }
    }

    fn finish(mut self) -> Result<BpfProgram> {
        if self.rev.len() > BPF_MAXINSNS {
            return Err(SeccompError::ProgramTooLong {
                len: self.rev.len(),
                max: BPF_MAXINSNS,
            });
        }
        self.rev.reverse();
        Ok(self.rev)
    }
}

#[cfg(test)]
pub(super) mod sim {
    //! A classic-BPF interpreter for the subset the compiler emits, to test programs
    //! without installing them.

    use super::*;

    /// Runs `prog` on a `seccomp_data` and returns the filter's verdict.
    pub(crate) fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                DATA_NR => nr,
                DATA_ARCH => arch,
                o if (DATA_ARGS..DATA_ARGS + 48).contains(&o) => {
                    let a = args[((o - DATA_ARGS) / 8) as usize];
                    if (o - DATA_ARGS) % 8 == 4 {
                        (a >> 32) as u32
                    } else {
                        a as u32
                    }
                }
                o => panic!("load from unexpected offset {o}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        for _ in 0..prog.len() {
            let ins = &prog[pc];
            pc += 1;
            match ins.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => acc = word(ins.k),
                c if c == BPF_ALU | BPF_AND | BPF_K => acc &= ins.k,
                c if c == BPF_RET | BPF_K => return ins.k,
                c if c == BPF_JMP | BPF_JA => pc += ins.k as usize,
                c => {
                    let taken = match c & 0xf0 {
                        BPF_JEQ => acc == ins.k,
                        BPF_JGT => acc > ins.k,
                        BPF_JGE => acc >= ins.k,
                        _ => panic!("unexpected opcode {c:#x}"),
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
            }
        }
        panic!("program ran off its end or looped");
    }
}

#[cfg(test)]
mod tests {
    use super::sim::run;
    use super::*;
    use oci_spec::runtime::{Arch as OciArch, LinuxSeccompArgBuilder, LinuxSyscallBuilder};

    const ENOSYS: u32 = RET_ENOSYS;
    const EPERM: u32 = RET_ERRNO | 1;

    fn native() -> Arch {
        Arch::native().expect("host architecture supported")
    }

    fn syscall(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscallBuilder {
        LinuxSyscallBuilder::default()
            .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .action(action)
    }

    fn arg(
        index: usize,
        op: LinuxSeccompOperator,
        value: u64,
        two: Option<u64>,
    ) -> LinuxSeccompArg {
        let b = LinuxSeccompArgBuilder::default()
            .index(index)
            .op(op)
            .value(value);
        match two {
            Some(t) => b.value_two(t).build().unwrap(),
            None => b.build().unwrap(),
        }
    }
    use oci_spec::runtime::LinuxSeccompArg;

    fn profile(default: LinuxSeccompAction, syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
        oci_spec::runtime::LinuxSeccompBuilder::default()
            .default_action(default)
            .syscalls(syscalls)
            .build()
            .unwrap()
    }

    fn nr(name: &str) -> u32 {
        u32::from(native().syscall_nr(name).unwrap())
    }

    #[test]
    fn every_operator_on_64bit_arguments() {
        use LinuxSeccompOperator::*;
        let big = 0x1_0000_0005u64;
        /// (operator, value, valueTwo, [(argument, allowed)])
        type Case<'a> = (LinuxSeccompOperator, u64, Option<u64>, &'a [(u64, bool)]);
        let cases: &[Case<'_>] = &[
            (
                ScmpCmpEq,
                big,
                None,
                &[(big, true), (5, false), (big + 1, false)],
            ),
            (
                ScmpCmpNe,
                big,
                None,
                &[(big, false), (5, true), (0x2_0000_0005, true)],
            ),
            (
                ScmpCmpLt,
                big,
                None,
                &[(big - 1, true), (big, false), (5, true), (u64::MAX, false)],
            ),
            (
                ScmpCmpLe,
                big,
                None,
                &[(big, true), (big + 1, false), (0, true)],
            ),
            (
                ScmpCmpGt,
                big,
                None,
                &[
                    (big + 1, true),
                    (big, false),
                    (0x2_0000_0000, true),
                    (6, false),
                ],
            ),
            (
                ScmpCmpGe,
                big,
                None,
                &[(big, true), (big - 1, false), (u64::MAX, true)],
            ),
            (
                ScmpCmpMaskedEq,
                0x7e02_0000,
                Some(0),
                &[
                    (0, true),
                    (0x11, true),
                    (0x2000_0000, false),
                    (0x1_0000_0000, true),
                ],
            ),
            (
                ScmpCmpMaskedEq,
                0xff_0000_00ff,
                Some(0x12_0000_0034),
                &[
                    (0x12_0000_0034, true),
                    (0x12_ffff_0034, true),
                    (0x13_0000_0034, false),
                ],
            ),
        ];
        for (op, value, two, probes) in cases {
            let p = profile(
                LinuxSeccompAction::ScmpActErrno,
                vec![syscall(&["getpid"], LinuxSeccompAction::ScmpActAllow)
                    .args(vec![arg(2, *op, *value, *two)])
                    .build()
                    .unwrap()],
            );
            let prog = compile(&p).unwrap();
            for (probe, allowed) in *probes {
                let mut args = [0u64; 6];
                args[2] = *probe;
                let got = run(&prog, native().audit(), nr("getpid"), args);
                let want = if *allowed { RET_ALLOW } else { EPERM };
                assert_eq!(got, want, "{op:?} {value:#x} on {probe:#x}");
            }
        }
    }

    #[test]
    fn conditions_on_distinct_args_and_on_the_same_arg_or() {
        use LinuxSeccompOperator::*;
        // distinct indexes: AND
        let and = profile(
            LinuxSeccompAction::ScmpActErrno,
            vec![syscall(&["getpid"], LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg(0, ScmpCmpEq, 1, None), arg(1, ScmpCmpEq, 2, None)])
                .build()
                .unwrap()],
        );
        let prog = compile(&and).unwrap();
        let a = native().audit();
        assert_eq!(run(&prog, a, nr("getpid"), [1, 2, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&prog, a, nr("getpid"), [1, 3, 0, 0, 0, 0]), EPERM);
        // same index twice: OR (runc's behaviour)
        let or = profile(
            LinuxSeccompAction::ScmpActErrno,
            vec![syscall(&["getpid"], LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg(0, ScmpCmpEq, 1, None), arg(0, ScmpCmpEq, 7, None)])
                .build()
                .unwrap()],
        );
        let prog = compile(&or).unwrap();
        assert_eq!(run(&prog, a, nr("getpid"), [7, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&prog, a, nr("getpid"), [1, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&prog, a, nr("getpid"), [2, 0, 0, 0, 0, 0]), EPERM);
    }

    #[test]
    fn actions_and_errno_values() {
        let p = profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![
                syscall(&["getpid"], LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(22u32)
                    .build()
                    .unwrap(),
                syscall(&["getppid"], LinuxSeccompAction::ScmpActErrno)
                    .build()
                    .unwrap(),
                syscall(&["gettid"], LinuxSeccompAction::ScmpActKillProcess)
                    .build()
                    .unwrap(),
                syscall(&["getuid"], LinuxSeccompAction::ScmpActKill)
                    .build()
                    .unwrap(),
                syscall(&["getgid"], LinuxSeccompAction::ScmpActTrap)
                    .build()
                    .unwrap(),
                syscall(&["geteuid"], LinuxSeccompAction::ScmpActLog)
                    .build()
                    .unwrap(),
                // a name no architecture has is skipped, the rest of the entry still applies
                syscall(
                    &["no_such_syscall", "getegid"],
                    LinuxSeccompAction::ScmpActErrno,
                )
                .errno_ret(13u32)
                .build()
                .unwrap(),
            ],
        );
        let prog = compile(&p).unwrap();
        let a = native().audit();
        let r = |name: &str| run(&prog, a, nr(name), [0; 6]);
        assert_eq!(r("getpid"), RET_ERRNO | 22);
        assert_eq!(r("getppid"), EPERM);
        assert_eq!(r("gettid"), RET_KILL_PROCESS);
        assert_eq!(r("getuid"), RET_KILL_THREAD);
        assert_eq!(r("getgid"), RET_TRAP);
        assert_eq!(r("geteuid"), RET_LOG);
        assert_eq!(r("getegid"), RET_ERRNO | 13);
        assert_eq!(r("read"), RET_ALLOW);
        // default allow: no ENOSYS stub for numbers above the profile's
        assert_eq!(run(&prog, a, 460, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn enosys_above_the_profile_and_bad_arch() {
        let p = profile(
            LinuxSeccompAction::ScmpActErrno,
            vec![syscall(
                &["read", "write", "close"],
                LinuxSeccompAction::ScmpActAllow,
            )
            .build()
            .unwrap()],
        );
        let prog = compile(&p).unwrap();
        let a = native().audit();
        let top = [nr("read"), nr("write"), nr("close")]
            .into_iter()
            .max()
            .unwrap();
        assert_eq!(run(&prog, a, nr("read"), [0; 6]), RET_ALLOW);
        assert_eq!(run(&prog, a, top + 1, [0; 6]), ENOSYS);
        assert_eq!(run(&prog, a, 100_000, [0; 6]), ENOSYS);
        // a number below the highest listed gets the default
        let below = (0..top).find(|n| ![nr("read"), nr("write"), nr("close")].contains(n));
        assert_eq!(run(&prog, a, below.unwrap(), [0; 6]), EPERM);
        // an ABI the filter has no section for
        assert_eq!(run(&prog, 0x4000_0028, 3, [0; 6]), RET_BAD_ARCH);
        if native() == Arch::X86_64 {
            assert_eq!(
                run(&prog, a, X32_SYSCALL_BIT | nr("read"), [0; 6]),
                RET_BAD_ARCH
            );
            assert_eq!(run(&prog, a, u32::MAX, [0; 6]), ENOSYS);
        }
    }

    #[test]
    fn i386_section_when_listed() {
        if native() != Arch::X86_64 {
            return;
        }
        let mut p = profile(
            LinuxSeccompAction::ScmpActErrno,
            vec![
                syscall(&["getpid", "socketcall"], LinuxSeccompAction::ScmpActAllow)
                    .build()
                    .unwrap(),
            ],
        );
        p.set_architectures(Some(vec![OciArch::ScmpArchX86_64, OciArch::ScmpArchX86]));
        let prog = compile(&p).unwrap();
        let i386 = Arch::I386;
        assert_eq!(run(&prog, i386.audit(), 20, [0; 6]), RET_ALLOW); // getpid on i386
        assert_eq!(run(&prog, i386.audit(), 102, [0; 6]), RET_ALLOW); // socketcall
        assert_eq!(run(&prog, i386.audit(), 21, [0; 6]), EPERM); // mount
        assert_eq!(run(&prog, Arch::X86_64.audit(), 39, [0; 6]), RET_ALLOW); // getpid
                                                                             // without SCMP_ARCH_X86, i386 is a bad architecture
        p.set_architectures(Some(vec![OciArch::ScmpArchX86_64]));
        let prog = compile(&p).unwrap();
        assert_eq!(run(&prog, i386.audit(), 20, [0; 6]), RET_BAD_ARCH);
    }

    #[test]
    fn unconditional_rule_is_the_fallback_of_conditional_ones() {
        use LinuxSeccompOperator::*;
        let p = profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![
                syscall(&["getpid"], LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(5u32)
                    .build()
                    .unwrap(),
                syscall(&["getpid"], LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(9u32)
                    .args(vec![arg(0, ScmpCmpEq, 3, None)])
                    .build()
                    .unwrap(),
            ],
        );
        let prog = compile(&p).unwrap();
        let a = native().audit();
        assert_eq!(
            run(&prog, a, nr("getpid"), [3, 0, 0, 0, 0, 0]),
            RET_ERRNO | 9
        );
        assert_eq!(
            run(&prog, a, nr("getpid"), [4, 0, 0, 0, 0, 0]),
            RET_ERRNO | 5
        );
    }

    #[test]
    fn far_jumps_use_trampolines() {
        use LinuxSeccompOperator::*;
        // Many conditional syscalls make the tree's jumps longer than 255 instructions.
        let names: Vec<&str> = [
            "read", "write", "openat", "close", "fstat", "mmap", "getpid",
        ]
        .into_iter()
        .collect();
        let mut rules = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let args: Vec<_> = (0..40)
                .map(|v| arg(0, ScmpCmpEq, v * 10 + i as u64, None))
                .collect();
            rules.push(
                syscall(&[name], LinuxSeccompAction::ScmpActAllow)
                    .args(args)
                    .build()
                    .unwrap(),
            );
        }
        let p = profile(LinuxSeccompAction::ScmpActErrno, rules);
        let prog = compile(&p).unwrap();
        assert!(prog.len() > 1000, "{}", prog.len());
        let a = native().audit();
        for (i, name) in names.iter().enumerate() {
            for v in [0u64, 17, 39] {
                let mut args = [0u64; 6];
                args[0] = v * 10 + i as u64;
                assert_eq!(run(&prog, a, nr(name), args), RET_ALLOW, "{name} {v}");
                args[0] += 400;
                assert_eq!(run(&prog, a, nr(name), args), EPERM, "{name} {v}");
            }
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let notify = profile(
            LinuxSeccompAction::ScmpActErrno,
            vec![syscall(&["read"], LinuxSeccompAction::ScmpActNotify)
                .build()
                .unwrap()],
        );
        let err = compile(&notify).unwrap_err().to_string();
        assert!(err.contains("SCMP_ACT_NOTIFY"), "{err}");
        let bad_index = profile(
            LinuxSeccompAction::ScmpActErrno,
            vec![syscall(&["read"], LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg(6, LinuxSeccompOperator::ScmpCmpEq, 0, None)])
                .build()
                .unwrap()],
        );
        let err = compile(&bad_index).unwrap_err().to_string();
        assert!(err.contains("read") && err.contains('6'), "{err}");
    }
}
