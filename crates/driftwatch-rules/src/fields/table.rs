//! The field table itself: every field of Falco's `syscall` source (libsinsp's filterchecks and
//! the container plugin's `container.*`/`k8s.*`) plus driftwatch's `drift.*`, one row each,
//! with its Falco type, argument form, whether driftwatch fills it and our description.

use super::{ArgSpec, FalcoType, FieldInfo, Filled};
use super::{K_CONNECT, K_EXEC, K_FILE, K_NET, K_OPEN, K_RENAME, K_SYMLINK, K_SYSCALL};

/// Which extraction a field uses. Fields driftwatch never fills share [`FieldId::Unfilled`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldId {
    Unfilled,
    EvtNum,
    EvtTime,
    EvtTimeS,
    EvtTimeIso8601,
    EvtDatetime,
    EvtDatetimeS,
    EvtRawtime,
    EvtRawtimeS,
    EvtRawtimeNs,
    EvtSource,
    EvtIsAsync,
    EvtDir,
    EvtType,
    EvtTypeIs,
    SyscallType,
    EvtCategory,
    EvtArgs,
    EvtArg,
    EvtRawarg,
    EvtInfo,
    EvtRes,
    EvtRawres,
    EvtFailed,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtIsOpenExec,
    EvtIsOpenCreate,
    ProcExe,
    ProcPexe,
    ProcAexe,
    ProcExepath,
    ProcPexepath,
    ProcAexepath,
    ProcName,
    ProcPname,
    ProcAname,
    ProcArgs,
    ProcAargs,
    ProcCmdline,
    ProcPcmdline,
    ProcAcmdline,
    ProcCmdnargs,
    ProcCmdlenargs,
    ProcExeline,
    ProcEnv,
    ProcCwd,
    ProcTty,
    ProcPid,
    ProcPpid,
    ProcApid,
    ProcVpid,
    ProcSid,
    ProcSname,
    ProcVpgid,
    ProcVpgidName,
    ProcDuration,
    ProcPidTs,
    ProcIsExeWritable,
    ProcIsExeUpperLayer,
    ProcIsExeFromMemfd,
    ProcIsSidLeader,
    ProcIsVpgidLeader,
    ProcExeIno,
    ProcExeInoCtime,
    ProcExeInoMtime,
    ProcExeInoCtimeDurationProcStart,
    ThreadCapPermitted,
    ThreadCapInheritable,
    ThreadCapEffective,
    ThreadTid,
    ThreadIsmain,
    ThreadVtid,
    UserUid,
    UserName,
    UserLoginuid,
    UserLoginname,
    GroupGid,
    GroupName,
    FdNum,
    FdType,
    FdTypechar,
    FdName,
    FdDirectory,
    FdFilename,
    FdIp,
    FdCip,
    FdSip,
    FdLip,
    FdRip,
    FdPort,
    FdCport,
    FdSport,
    FdLport,
    FdRport,
    FdL4proto,
    FdSockfamily,
    FdIsServer,
    FdContainername,
    FdContainerdirectory,
    FdProto,
    FdCproto,
    FdSproto,
    FdLproto,
    FdRproto,
    FdNet,
    FdCnet,
    FdSnet,
    FdLnet,
    FdRnet,
    FdConnected,
    FdNameChanged,
    FdNameraw,
    FsPathName,
    FsPathNameraw,
    FsPathSource,
    FsPathSourceraw,
    FsPathTarget,
    FsPathTargetraw,
    ContainerId,
    ContainerFullId,
    ContainerName,
    ContainerImage,
    ContainerImageId,
    ContainerType,
    ContainerPrivileged,
    ContainerMounts,
    ContainerMount,
    ContainerMountSource,
    ContainerMountDest,
    ContainerMountMode,
    ContainerMountRdwr,
    ContainerMountPropagation,
    ContainerImageRepository,
    ContainerImageTag,
    ContainerImageDigest,
    ContainerStartTs,
    ContainerDuration,
    ContainerLabel,
    ContainerLabels,
    K8sPodName,
    K8sNsName,
    K8sPodId,
    K8sPodUid,
    K8sPodLabel,
    K8sPodLabels,
    FdOldname,
    DriftKind,
    DriftVerdict,
    DriftSubject,
    DriftPath,
    DriftHash,
    DriftImageHash,
    DriftLayer,
    DriftPackage,
    DriftPackageVersion,
    DriftPackageEcosystem,
    DriftPackageDigest,
    DriftDetail,
    DriftEnforcement,
    DriftAction,
    DriftBlockedBy,
    DriftInterpreter,
    DriftInvocation,
    DriftInlineFlag,
    DriftInlineCode,
    DriftStdin,
    DriftInlineLearned,
}

macro_rules! fields {
    ($($name:literal, $id:ident, $fty:ident, $arg:ident, $filled:expr, $desc:literal;)*) => {
        /// Every field, in documentation order (Falco's order, then driftwatch's own).
        pub static FIELDS: &[FieldInfo] = &[
            $(FieldInfo {
                name: $name,
                falco_type: FalcoType::$fty,
                ty: FalcoType::$fty.value_type(matches!(FieldId::$id, FieldId::EvtTime)),
                arg: ArgSpec::$arg,
                filled: $filled,
                desc: $desc,
                id: FieldId::$id,
            },)*
        ];
    };
}

fields! {
    "evt.num", EvtNum, Uint64, None, Filled::Always,
        "The agent's sequence number for the event, from 1 (0 for events a tool built without numbering).";
    "evt.time", EvtTime, Charbuf, None, Filled::Always,
        "When the event happened: nanoseconds since the epoch in comparisons and JSON, the time of day (UTC) as `HH:MM:SS.nnnnnnnnn` in output text, as Falco prints it.";
    "evt.time.s", EvtTimeS, Charbuf, None, Filled::Always,
        "The event's time of day (UTC) as `HH:MM:SS`, without the fraction.";
    "evt.time.iso8601", EvtTimeIso8601, Charbuf, None, Filled::Always,
        "The event's time as ISO 8601 in UTC with nanoseconds: `2026-12-07T14:05:09.123456789Z`.";
    "evt.datetime", EvtDatetime, Charbuf, None, Filled::Always,
        "The event's date and time (UTC) as `YYYY-MM-DD HH:MM:SS.nnnnnnnnn`.";
    "evt.datetime.s", EvtDatetimeS, Charbuf, None, Filled::Always,
        "The event's date and time (UTC) as `YYYY-MM-DD HH:MM:SS`.";
    "evt.rawtime", EvtRawtime, Abstime, None, Filled::Always,
        "When the event happened, nanoseconds since the epoch.";
    "evt.rawtime.s", EvtRawtimeS, Abstime, None, Filled::Always,
        "Whole seconds of `evt.rawtime`.";
    "evt.rawtime.ns", EvtRawtimeNs, Abstime, None, Filled::Always,
        "The nanoseconds part of `evt.rawtime`.";
    "evt.reltime", Unfilled, Reltime, None, Filled::Never,
        "Time since the capture started. driftwatch has no capture start.";
    "evt.reltime.s", Unfilled, Reltime, None, Filled::Never,
        "Seconds part of `evt.reltime`.";
    "evt.reltime.ns", Unfilled, Reltime, None, Filled::Never,
        "Nanoseconds part of `evt.reltime`.";
    "evt.pluginname", Unfilled, Charbuf, None, Filled::Never,
        "The plugin that produced the event (plugin sources only).";
    "evt.plugininfo", Unfilled, Charbuf, None, Filled::Never,
        "A plugin event's summary (plugin sources only).";
    "evt.source", EvtSource, Charbuf, None, Filled::Always,
        "The event source: always `syscall`.";
    "evt.is_async", EvtIsAsync, Bool, None, Filled::Always,
        "Always false: driftwatch's events are tied to a process's call (the `container` event included).";
    "evt.asynctype", Unfilled, Charbuf, None, Filled::Never,
        "The name of an asynchronous event (Falco's metaevents).";
    "evt.hostname", Unfilled, Charbuf, None, Filled::Never,
        "The host name Falco runs on. Not an event fact here: alerts carry the node name in `hostname`.";
    "evt.latency", Unfilled, Reltime, None, Filled::Never,
        "Deprecated in Falco. Time between a call's entry and exit. driftwatch sees only completed calls.";
    "evt.latency.s", Unfilled, Reltime, None, Filled::Never,
        "Deprecated in Falco. Seconds part of `evt.latency`.";
    "evt.latency.ns", Unfilled, Reltime, None, Filled::Never,
        "Deprecated in Falco. Nanoseconds part of `evt.latency`.";
    "evt.latency.quantized", Unfilled, Uint64, None, Filled::Never,
        "Deprecated in Falco. `evt.latency` on a log-10 scale.";
    "evt.latency.human", Unfilled, Charbuf, None, Filled::Never,
        "Deprecated in Falco. `evt.latency` as readable text.";
    "evt.deltatime", Unfilled, Reltime, None, Filled::Never,
        "Time since the previous event of the capture.";
    "evt.deltatime.s", Unfilled, Reltime, None, Filled::Never,
        "Seconds part of `evt.deltatime`.";
    "evt.deltatime.ns", Unfilled, Reltime, None, Filled::Never,
        "Nanoseconds part of `evt.deltatime`.";
    "evt.outputtime", Unfilled, Charbuf, None, Filled::Never,
        "The time format Falco's output uses (outputs only).";
    "evt.dir", EvtDir, Charbuf, None, Filled::Always,
        "Deprecated in Falco. The event direction. driftwatch only sees completed calls, so always `<` (exit).";
    "evt.type", EvtType, Charbuf, None, Filled::Always,
        "The event type as Falco names the call: `execve`, `openat` (files opened or created), `unlinkat`, `renameat2`, `fchmodat`, `fchownat`, `mkdirat`, `symlinkat`, `listen`, `connect`, or `container` (a container's configuration at create/start, carrying config-drift findings). In conditions every Falco name of the same change matches: `open`, `openat`, `openat2` and `creat` match files opened or created, `execve`/`execveat` execs, `unlink`/`unlinkat`/`rmdir` removals, `rename`/`renameat`/`renameat2`, `chmod`/`fchmod`/`fchmodat`, `chown`/`lchown`/`fchown`/`fchownat`, `mkdir`/`mkdirat`, `symlink`/`symlinkat`. Other syscall names match nothing.";
    "evt.type.is", EvtTypeIs, Uint32, KeyRequired, Filled::Always,
        "`evt.type.is.NAME` (or `[NAME]`) is 1 when the event is of that Falco type (with the same names as `evt.type`), else 0.";
    "syscall.type", SyscallType, Charbuf, None, Filled::Events(K_SYSCALL),
        "The system call's name, as `evt.type` prints it. Missing for `container` events.";
    "evt.category", EvtCategory, Charbuf, None, Filled::Always,
        "The event's category: `process` for `execve`, `file` for file changes, `net` for `listen` and `connect`, `internal` for `container`.";
    "evt.cpu", Unfilled, Int16, None, Filled::Never,
        "The CPU the event happened on.";
    "evt.args", EvtArgs, Charbuf, None, Filled::Events(K_SYSCALL),
        "Every argument of the call driftwatch knows, as `name=value` pairs separated by spaces, in Falco's order and formats (see `evt.arg`).";
    "evt.arg", EvtArg, Charbuf, IndexOrKeyRequired, Filled::Events(K_SYSCALL),
        "One argument of the call, by Falco's name (`evt.arg.flags`, `evt.arg[flags]`) or position (`evt.arg[3]`), printed as Falco prints it. driftwatch knows: open/creat `name` (also `path`), `flags` (`O_WRONLY|O_CREAT|O_TRUNC` style), `mode` (octal); unlink `name` (also `path`); rename `oldpath`, `newpath`; chmod `filename` (also `path`), `mode` (`S_IRUSR|S_ISUID` style); chown `pathname` (also `path`), `uid`, `gid`; mkdir `path`, `mode`; symlink `target`, `linkpath`; execve `filename`, `exe`, `args`, `tid`, `pid`, `ptid`, `cwd`, `comm`, `env`, `tty`, `vpgid`, `loginuid`, `cap_*`, `exe_ino`, `uid`, `gid`; connect `tuple`, `addr`; every call `res` (`0`). Missing for arguments driftwatch does not see (descriptors, devices, ptrace requests...).";
    "evt.rawarg", EvtRawarg, Dyn, IndexOrKeyRequired, Filled::Events(K_SYSCALL),
        "One argument of the call by name, unformatted: numbers as numbers (`evt.rawarg.flags` is Falco's flag bits, `evt.rawarg.mode` the mode bits), strings as they are. The same arguments as `evt.arg`.";
    "evt.info", EvtInfo, Charbuf, None, Filled::Events(K_SYSCALL),
        "The same text as `evt.args` (driftwatch's events carry no other description).";
    "evt.buffer", Unfilled, Bytebuf, None, Filled::Never,
        "The data buffer of a read or write call. driftwatch does not trace I/O calls.";
    "evt.buflen", Unfilled, Uint64, None, Filled::Never,
        "The length of `evt.buffer`.";
    "evt.res", EvtRes, Charbuf, None, Filled::Always,
        "The call's result: always `SUCCESS`, since driftwatch reports changes that happened and execs that succeeded (rules testing failures never fire).";
    "evt.rawres", EvtRawres, Int64, None, Filled::Always,
        "The call's return value: always 0 (see `evt.res`).";
    "evt.failed", EvtFailed, Bool, None, Filled::Always,
        "Always false (see `evt.res`).";
    "evt.is_io", Unfilled, Bool, None, Filled::Never,
        "True for calls that read or write data. driftwatch does not trace I/O calls.";
    "evt.is_io_read", Unfilled, Bool, None, Filled::Never,
        "True for calls that read data.";
    "evt.is_io_write", Unfilled, Bool, None, Filled::Never,
        "True for calls that write data.";
    "evt.io_dir", Unfilled, Charbuf, None, Filled::Never,
        "`r` or `w` for I/O calls.";
    "evt.is_wait", Unfilled, Bool, None, Filled::Never,
        "True for calls that make the thread wait (sleep, select, poll).";
    "evt.wait_latency", Unfilled, Reltime, None, Filled::Never,
        "Deprecated in Falco. Time a waiting call slept.";
    "evt.is_syslog", Unfilled, Bool, None, Filled::Never,
        "True for writes to `/dev/log`.";
    "evt.count", Unfilled, Uint32, None, Filled::Never,
        "1 for every event: for counting in tables.";
    "evt.count.error", Unfilled, Uint32, None, Filled::Never,
        "1 for every failed call.";
    "evt.count.error.file", Unfilled, Uint32, None, Filled::Never,
        "1 for every failed file call.";
    "evt.count.error.net", Unfilled, Uint32, None, Filled::Never,
        "1 for every failed network call.";
    "evt.count.error.memory", Unfilled, Uint32, None, Filled::Never,
        "1 for every failed memory call.";
    "evt.count.error.other", Unfilled, Uint32, None, Filled::Never,
        "1 for every other failed call.";
    "evt.count.exit", Unfilled, Uint32, None, Filled::Never,
        "1 for every exit event.";
    "evt.count.procinfo", Unfilled, Uint32, None, Filled::Never,
        "Per-process counter of Falco's procinfo events.";
    "evt.count.threadinfo", Unfilled, Uint32, None, Filled::Never,
        "Per-thread counter of Falco's procinfo events.";
    "evt.around", Unfilled, Uint64, KeyRequired, Filled::Never,
        "Selects events around a time (`evt.around[T]=D`), for captures. Falco takes it in conditions only.";
    "evt.abspath", Unfilled, Charbuf, KeyRequired, Filled::Never,
        "The absolute path of an `*at` call's path argument (`evt.abspath.src`, `evt.abspath.dst`). Use `fd.name`, `fs.path.source` and `fs.path.target`.";
    "evt.buflen.in", Unfilled, Uint64, None, Filled::Never,
        "Bytes read (tables).";
    "evt.buflen.out", Unfilled, Uint64, None, Filled::Never,
        "Bytes written (tables).";
    "evt.buflen.file", Unfilled, Uint64, None, Filled::Never,
        "Bytes of file I/O (tables).";
    "evt.buflen.file.in", Unfilled, Uint64, None, Filled::Never,
        "Bytes read from files (tables).";
    "evt.buflen.file.out", Unfilled, Uint64, None, Filled::Never,
        "Bytes written to files (tables).";
    "evt.buflen.net", Unfilled, Uint64, None, Filled::Never,
        "Bytes of network I/O (tables).";
    "evt.buflen.net.in", Unfilled, Uint64, None, Filled::Never,
        "Bytes received (tables).";
    "evt.buflen.net.out", Unfilled, Uint64, None, Filled::Never,
        "Bytes sent (tables).";
    "evt.is_open_read", EvtIsOpenRead, Bool, None, Filled::Events(K_OPEN),
        "For files opened or created: true if opened for reading (`O_RDONLY` or `O_RDWR`). Missing for other events.";
    "evt.is_open_write", EvtIsOpenWrite, Bool, None, Filled::Events(K_OPEN),
        "For files opened or created: true if opened for writing. Missing for other events.";
    "evt.infra.docker.name", Unfilled, Charbuf, None, Filled::Never,
        "Name of a Docker infrastructure event (tables).";
    "evt.infra.docker.container.id", Unfilled, Charbuf, None, Filled::Never,
        "Container id of a Docker infrastructure event (tables).";
    "evt.infra.docker.container.name", Unfilled, Charbuf, None, Filled::Never,
        "Container name of a Docker infrastructure event (tables).";
    "evt.infra.docker.container.image", Unfilled, Charbuf, None, Filled::Never,
        "Image of a Docker infrastructure event (tables).";
    "evt.is_open_exec", EvtIsOpenExec, Bool, None, Filled::Events(K_OPEN),
        "For files opened or created: true if the call created the file with an execute bit in its mode.";
    "evt.is_open_create", EvtIsOpenCreate, Bool, None, Filled::Events(K_OPEN),
        "For files opened or created: true if the call created the file (`O_CREAT` in the flags).";
    "proc.exe", ProcExe, Charbuf, None, Filled::Always,
        "The first command-line argument (argv[0]), as the caller passed it.";
    "proc.pexe", ProcPexe, Charbuf, None, Filled::Always,
        "The parent's argv[0], when the sensor read the parent's command line.";
    "proc.aexe", ProcAexe, Charbuf, Index, Filled::Always,
        "argv[0] of an ancestor: `[0]` the process, `[1]` the parent; driftwatch knows no further ancestor's command line (missing). Without an index, a test matches if it holds for an ancestor (here: the parent), and `%proc.aexe` prints the parent's (Falco: every ancestor's, space-separated).";
    "proc.exepath", ProcExepath, Charbuf, None, Filled::Always,
        "The full path of the executed file, inside the container.";
    "proc.pexepath", ProcPexepath, Charbuf, None, Filled::Always,
        "The parent's executable path, when known.";
    "proc.aexepath", ProcAexepath, Charbuf, Index, Filled::Always,
        "Ancestor executable paths: `[0]` the process, `[1]` the parent, `[2]` the grandparent... Without an index, a test matches if any ancestor matches, and `%proc.aexepath` prints every ancestor's from the parent up, space-separated, as Falco. Missing where the sensor did not know the path.";
    "proc.name", ProcName, Charbuf, None, Filled::Always,
        "The process's comm: the executable's name as the kernel truncates it (15 bytes).";
    "proc.pname", ProcPname, Charbuf, None, Filled::Always,
        "The parent's name (`proc.aname[1]`).";
    "proc.aname", ProcAname, Charbuf, Index, Filled::Always,
        "Ancestor names: `proc.aname[1]` is the parent, `[2]` the grandparent, `[0]` the process itself. Without an index, a test matches if it holds for any ancestor from the parent up, whatever the operator (`proc.aname != sh`: some ancestor is not `sh`), and `%proc.aname` prints every ancestor's name from the parent up, space-separated, as in Falco.";
    "proc.args", ProcArgs, Charbuf, Index, Filled::Always,
        "The arguments (argv[1..]) joined by spaces; empty when there are none. `proc.args[N]` is argv[N] alone.";
    "proc.aargs", ProcAargs, Charbuf, Index, Filled::Always,
        "The arguments of an ancestor: `[0]` the process's, `[1]` the parent's (when its command line was read); missing beyond.";
    "proc.cmdline", ProcCmdline, Charbuf, None, Filled::Always,
        "`proc.name` followed by the arguments, separated by spaces.";
    "proc.pcmdline", ProcPcmdline, Charbuf, None, Filled::Always,
        "The parent's `proc.cmdline`: its name and arguments, when the sensor read the parent's command line.";
    "proc.acmdline", ProcAcmdline, Charbuf, Index, Filled::Always,
        "The command line of an ancestor: `[0]` the process's, `[1]` the parent's; missing beyond. Without an index, a test matches if it holds for an ancestor (here: the parent), and `%proc.acmdline` prints the parent's (Falco: every ancestor's, space-separated).";
    "proc.cmdnargs", ProcCmdnargs, Uint64, None, Filled::Always,
        "The number of arguments (argv[1..]).";
    "proc.cmdlenargs", ProcCmdlenargs, Uint64, None, Filled::Always,
        "The total length of the arguments (argv[1..]), separators not counted.";
    "proc.exeline", ProcExeline, Charbuf, None, Filled::Always,
        "`proc.exe` followed by the arguments, separated by spaces.";
    "proc.env", ProcEnv, Charbuf, Key, Filled::Events(K_EXEC),
        "The environment at exec: `proc.env[NAME]` is one variable's value (missing if unset); `proc.env` alone is every `NAME=value`, separated by spaces.";
    "proc.aenv", Unfilled, Charbuf, IndexOrKey, Filled::Never,
        "The environment of ancestors. driftwatch records the environment of the exec'ing process only (`proc.env`).";
    "proc.cwd", ProcCwd, Charbuf, None, Filled::Always,
        "The working directory at exec.";
    "proc.loginshellid", Unfilled, Int64, None, Filled::Never,
        "The pid of the oldest shell among the ancestors.";
    "proc.tty", ProcTty, Uint32, None, Filled::Always,
        "The controlling terminal's device number, 0 when the process has none.";
    "proc.pid", ProcPid, Int64, None, Filled::Always,
        "The process id (thread-group id) as seen from the host.";
    "proc.ppid", ProcPpid, Int64, None, Filled::Always,
        "The parent's process id as seen from the host.";
    "proc.apid", ProcApid, Int64, Index, Filled::Always,
        "Ancestor pids (host): `[0]` the process, `[1]` the parent, `[2]` the grandparent...; missing beyond what the sensor walked. Without an index, a test matches if it holds for any ancestor (`proc.apid != 1`: some ancestor is not pid 1), and `%proc.apid` prints the process's own pid, as in Falco.";
    "proc.vpid", ProcVpid, Int64, None, Filled::Always,
        "The process id in its own pid namespace (1 for a container's init), when known.";
    "proc.pvpid", Unfilled, Int64, None, Filled::Never,
        "The parent's pid in its pid namespace.";
    "proc.sid", ProcSid, Int64, None, Filled::Always,
        "The session id (host view), when known.";
    "proc.sname", ProcSname, Charbuf, None, Filled::Always,
        "The name of the session leader, when known.";
    "proc.sid.exe", Unfilled, Charbuf, None, Filled::Never,
        "argv[0] of the session leader.";
    "proc.sid.exepath", Unfilled, Charbuf, None, Filled::Never,
        "The executable path of the session leader.";
    "proc.vpgid", ProcVpgid, Int64, None, Filled::Always,
        "The process group id in the process's pid namespace, when known.";
    "proc.vpgid.name", ProcVpgidName, Charbuf, None, Filled::Always,
        "The name of the process group leader, when known.";
    "proc.vpgid.exe", Unfilled, Charbuf, None, Filled::Never,
        "argv[0] of the process group leader.";
    "proc.vpgid.exepath", Unfilled, Charbuf, None, Filled::Never,
        "The executable path of the process group leader.";
    "proc.pgid", Unfilled, Int64, None, Filled::Never,
        "The process group id as seen from the host.";
    "proc.pgid.name", Unfilled, Charbuf, None, Filled::Never,
        "The name of the process group leader (host view).";
    "proc.pgid.exe", Unfilled, Charbuf, None, Filled::Never,
        "argv[0] of the process group leader (host view).";
    "proc.pgid.exepath", Unfilled, Charbuf, None, Filled::Never,
        "The executable path of the process group leader (host view).";
    "proc.duration", ProcDuration, Reltime, None, Filled::Always,
        "Nanoseconds since the process started (the event's time minus its start), when the start is known.";
    "proc.ppid.duration", Unfilled, Reltime, None, Filled::Never,
        "Time since the parent started.";
    "proc.pid.ts", ProcPidTs, Reltime, None, Filled::Always,
        "When the process started, nanoseconds since the epoch, when known.";
    "proc.ppid.ts", Unfilled, Reltime, None, Filled::Never,
        "When the parent started.";
    "proc.is_exe_writable", ProcIsExeWritable, Bool, None, Filled::Events(K_EXEC),
        "True if the executed file is writable by the process's user.";
    "proc.is_exe_upper_layer", ProcIsExeUpperLayer, Bool, None, Filled::Events(K_EXEC),
        "True if the executed file is in the overlay's upper (writable) layer. Prefer `drift.verdict`, which also tells copy-ups from real changes.";
    "proc.is_exe_lower_layer", Unfilled, Bool, None, Filled::Never,
        "True if the executed file is in an image (lower) layer. Use `drift.verdict = image`.";
    "proc.is_exe_from_memfd", ProcIsExeFromMemfd, Bool, None, Filled::Events(K_EXEC),
        "True if the executed file is an anonymous memory file (memfd_create).";
    "proc.is_sid_leader", ProcIsSidLeader, Bool, None, Filled::Always,
        "True if the process leads its session (its pid is the session id), when the session is known.";
    "proc.is_vpgid_leader", ProcIsVpgidLeader, Bool, None, Filled::Always,
        "True if the process leads its process group (its namespace pid is the group id), when both are known.";
    "proc.is_pgid_leader", Unfilled, Bool, None, Filled::Never,
        "True if the process leads its process group (host view).";
    "proc.exe_ino", ProcExeIno, Int64, None, Filled::Always,
        "The executed file's inode number, when the sensor read it.";
    "proc.exe_ino.ctime", ProcExeInoCtime, Abstime, None, Filled::Always,
        "The executed file's inode change time (nanoseconds since the epoch), when known.";
    "proc.exe_ino.mtime", ProcExeInoMtime, Abstime, None, Filled::Always,
        "The executed file's modification time (nanoseconds since the epoch), when known.";
    "proc.exe_ino.ctime_duration_proc_start", ProcExeInoCtimeDurationProcStart, Abstime, None, Filled::Always,
        "Nanoseconds from the executed file's inode change to the process's start: small for a binary written and run at once. Missing when either time is unknown.";
    "proc.exe_ino.ctime_duration_pidns_start", Unfilled, Abstime, None, Filled::Never,
        "Time from the executable's inode change to the start of the pid namespace's init.";
    "proc.pidns_init_start_ts", Unfilled, Uint64, None, Filled::Never,
        "When the pid namespace's init started.";
    "thread.cap_permitted", ThreadCapPermitted, Charbuf, None, Filled::Always,
        "The permitted capabilities after exec, as Falco prints them: names separated by spaces (`CAP_CHOWN CAP_SYS_ADMIN`), a bit without a name as its number. Missing when not known.";
    "thread.cap_inheritable", ThreadCapInheritable, Charbuf, None, Filled::Always,
        "The inheritable capabilities, printed as `thread.cap_permitted`. Missing when not known.";
    "thread.cap_effective", ThreadCapEffective, Charbuf, None, Filled::Always,
        "The effective capabilities after exec, printed as `thread.cap_permitted`. Missing when not known.";
    "proc.fdopencount", Unfilled, Uint64, None, Filled::Never,
        "Number of open descriptors of the process.";
    "proc.fdlimit", Unfilled, Int64, None, Filled::Never,
        "The process's descriptor limit.";
    "proc.fdusage", Unfilled, Double, None, Filled::Never,
        "Open descriptors as a share of the limit.";
    "proc.vmsize", Unfilled, Uint64, None, Filled::Never,
        "The process's virtual memory size.";
    "proc.vmrss", Unfilled, Uint64, None, Filled::Never,
        "The process's resident memory.";
    "proc.vmswap", Unfilled, Uint64, None, Filled::Never,
        "The process's swapped memory.";
    "thread.pfmajor", Unfilled, Uint64, None, Filled::Never,
        "Major page faults of the thread.";
    "thread.pfminor", Unfilled, Uint64, None, Filled::Never,
        "Minor page faults of the thread.";
    "thread.tid", ThreadTid, Int64, None, Filled::Events(K_EXEC),
        "The thread id (host view): after an exec the process's single thread, so `proc.pid`. Missing for other events, whose thread driftwatch does not record.";
    "thread.ismain", ThreadIsmain, Bool, None, Filled::Events(K_EXEC),
        "True after an exec (the exec'ing thread becomes the main thread). Missing for other events.";
    "thread.vtid", ThreadVtid, Int64, None, Filled::Events(K_EXEC),
        "The thread id in its pid namespace: after an exec, `proc.vpid`. Missing for other events.";
    "thread.nametid", Unfilled, Charbuf, None, Filled::Never,
        "Name and thread id together (tables).";
    "thread.exectime", Unfilled, Reltime, None, Filled::Never,
        "CPU time the thread last ran.";
    "thread.totexectime", Unfilled, Reltime, None, Filled::Never,
        "Total CPU time of the thread.";
    "thread.cgroups", Unfilled, Charbuf, None, Filled::Never,
        "Every cgroup of the thread.";
    "thread.cgroup", Unfilled, Charbuf, KeyRequired, Filled::Never,
        "The thread's cgroup for one controller (`thread.cgroup.cpuacct`).";
    "proc.nthreads", Unfilled, Uint64, None, Filled::Never,
        "Number of threads of the process.";
    "proc.nchilds", Unfilled, Uint64, None, Filled::Never,
        "Number of child threads of the process.";
    "thread.cpu", Unfilled, Double, None, Filled::Never,
        "CPU use of the thread.";
    "thread.cpu.user", Unfilled, Double, None, Filled::Never,
        "User CPU use of the thread.";
    "thread.cpu.system", Unfilled, Double, None, Filled::Never,
        "System CPU use of the thread.";
    "thread.vmsize", Unfilled, Uint64, None, Filled::Never,
        "Virtual memory of the thread's process.";
    "thread.vmrss", Unfilled, Uint64, None, Filled::Never,
        "Resident memory of the thread's process.";
    "thread.vmsize.b", Unfilled, Uint64, None, Filled::Never,
        "Virtual memory in bytes (tables).";
    "thread.vmrss.b", Unfilled, Uint64, None, Filled::Never,
        "Resident memory in bytes (tables).";
    "proc.stdin.type", Unfilled, Charbuf, None, Filled::Never,
        "The type of the process's standard input descriptor.";
    "proc.stdout.type", Unfilled, Charbuf, None, Filled::Never,
        "The type of the process's standard output descriptor.";
    "proc.stderr.type", Unfilled, Charbuf, None, Filled::Never,
        "The type of the process's standard error descriptor.";
    "proc.stdin.name", Unfilled, Charbuf, None, Filled::Never,
        "What the process's standard input is (file, socket tuple...).";
    "proc.stdout.name", Unfilled, Charbuf, None, Filled::Never,
        "What the process's standard output is.";
    "proc.stderr.name", Unfilled, Charbuf, None, Filled::Never,
        "What the process's standard error is.";
    "user.uid", UserUid, Uint32, None, Filled::Always,
        "The user id.";
    "user.name", UserName, Charbuf, None, Filled::Always,
        "The user's name, resolved against the container's /etc/passwd.";
    "user.homedir", Unfilled, Charbuf, None, Filled::Never,
        "The user's home directory.";
    "user.shell", Unfilled, Charbuf, None, Filled::Never,
        "The user's login shell.";
    "user.loginuid", UserLoginuid, Int64, None, Filled::Always,
        "The audit login uid: -1 when the process has none (as Falco prints it), missing when not known.";
    "user.loginname", UserLoginname, Charbuf, None, Filled::Always,
        "The login uid's user name, resolved against the container's /etc/passwd, when known.";
    "group.gid", GroupGid, Uint32, None, Filled::Always,
        "The group id.";
    "group.name", GroupName, Charbuf, None, Filled::Always,
        "The group's name, resolved against the container's /etc/group, when known.";
    "fd.num", FdNum, Int64, None, Filled::Events(K_FILE|K_NET),
        "The descriptor number: driftwatch does not see the descriptor the process got, so 0 on file and network events (Falco's `fd.num>=0` success tests hold). Missing for other events.";
    "fd.type", FdType, Charbuf, None, Filled::Events(K_FILE & !K_SYMLINK | K_NET),
        "The descriptor's type: `file` or `directory` for file events (from the file's type; missing for a symlink, which Falco's `symlinkat` has no descriptor for), `ipv4` or `ipv6` for network events.";
    "fd.typechar", FdTypechar, Charbuf, None, Filled::Events(K_FILE|K_NET),
        "The file's type as one character: `f` file, `d` directory, `l` symlink, ...; for sockets `4` (IPv4) or `6` (IPv6).";
    "fd.name", FdName, Charbuf, None, Filled::Events(K_FILE|K_NET),
        "The path of the file the event is about, inside the container (the new name for a rename, the link for a symlink). For `connect`: `cip:cport->sip:sport` as Falco writes it (IPv6 addresses in brackets); for `listen`: `lip:lport`.";
    "fd.directory", FdDirectory, Charbuf, None, Filled::Events(K_FILE),
        "The directory part of `fd.name`.";
    "fd.filename", FdFilename, Charbuf, None, Filled::Events(K_FILE),
        "The last component of `fd.name`.";
    "fd.ip", FdIp, Ipaddr, None, Filled::Events(K_NET),
        "Matches if the client or the server address matches (`fd.ip = 10.0.0.1` is `fd.cip = 10.0.0.1 or fd.sip = 10.0.0.1`). Falco takes it in conditions only.";
    "fd.cip", FdCip, Ipaddr, None, Filled::Events(K_CONNECT),
        "The client address: the local address of a `connect`. Missing for `listen`.";
    "fd.sip", FdSip, Ipaddr, None, Filled::Events(K_NET),
        "The server address: the local address of a `listen`, the remote address of a `connect`.";
    "fd.lip", FdLip, Ipaddr, None, Filled::Events(K_NET),
        "The local address (`0.0.0.0` or `::` for a listener on every address).";
    "fd.rip", FdRip, Ipaddr, None, Filled::Events(K_CONNECT),
        "The remote address of a `connect`. Missing for `listen`.";
    "fd.port", FdPort, Port, None, Filled::Events(K_NET),
        "Matches if the client or the server port matches. Falco takes it in conditions only.";
    "fd.cport", FdCport, Port, None, Filled::Events(K_CONNECT),
        "The client port: the local port of a `connect` (0 when the kernel had not picked the ephemeral port yet). Missing for `listen`.";
    "fd.sport", FdSport, Port, None, Filled::Events(K_NET),
        "The server port: the local port of a `listen`, the remote port of a `connect`.";
    "fd.lport", FdLport, Port, None, Filled::Events(K_NET),
        "The local port.";
    "fd.rport", FdRport, Port, None, Filled::Events(K_CONNECT),
        "The remote port of a `connect`. Missing for `listen`.";
    "fd.l4proto", FdL4proto, Charbuf, None, Filled::Events(K_NET),
        "For `listen` and `connect`: the transport protocol, `tcp` or `udp`.";
    "fd.sockfamily", FdSockfamily, Charbuf, None, Filled::Events(K_NET),
        "For `listen` and `connect`: `ip` (IPv4 or IPv6).";
    "fd.is_server", FdIsServer, Bool, None, Filled::Events(K_NET),
        "True for a `listen` (the process is the server), false for a `connect`.";
    "fd.uid", Unfilled, Charbuf, None, Filled::Never,
        "A unique id of the descriptor (thread and number).";
    "fd.containername", FdContainername, Charbuf, None, Filled::Events(K_FILE|K_NET),
        "`container.id` and `fd.name` joined by `:`.";
    "fd.containerdirectory", FdContainerdirectory, Charbuf, None, Filled::Events(K_FILE),
        "`container.id` and `fd.directory` joined by `:`.";
    "fd.proto", FdProto, Port, None, Filled::Events(K_NET),
        "Matches if the client or the server protocol matches (`fd.cproto`, `fd.sproto`). Falco takes it in conditions only.";
    "fd.cproto", FdCproto, Charbuf, None, Filled::Events(K_CONNECT),
        "The client port's protocol name. Falco resolves no port names unless told to, and prints the port number: driftwatch does the same (`40000`). Missing for `listen`.";
    "fd.sproto", FdSproto, Charbuf, None, Filled::Events(K_NET),
        "The server port as Falco prints it without port-name resolution: its number, as text (`443`).";
    "fd.lproto", FdLproto, Charbuf, None, Filled::Events(K_NET),
        "The local port as text, as `fd.sproto`.";
    "fd.rproto", FdRproto, Charbuf, None, Filled::Events(K_CONNECT),
        "The remote port as text, as `fd.sproto`. Missing for `listen`.";
    "fd.net", FdNet, Ipnet, None, Filled::Events(K_NET),
        "Matches if the client or the server address is in a network: `fd.net = \"10.0.0.0/8\"`, `fd.net in (\"192.168.0.0/16\", \"fd00::/8\")`; a plain address is a /32 (or /128). Falco takes it in conditions only.";
    "fd.cnet", FdCnet, Ipnet, None, Filled::Events(K_CONNECT),
        "Matches if the client address (`fd.cip`) is in a network, as `fd.net`. Falco takes it in conditions only.";
    "fd.snet", FdSnet, Ipnet, None, Filled::Events(K_NET),
        "Matches if the server address (`fd.sip`) is in a network, as `fd.net`. Falco takes it in conditions only.";
    "fd.lnet", FdLnet, Ipnet, None, Filled::Events(K_NET),
        "Matches if the local address (`fd.lip`) is in a network, as `fd.net`. Falco takes it in conditions only.";
    "fd.rnet", FdRnet, Ipnet, None, Filled::Events(K_CONNECT),
        "Matches if the remote address (`fd.rip`) is in a network, as `fd.net`. Falco takes it in conditions only.";
    "fd.connected", FdConnected, Bool, None, Filled::Events(K_NET),
        "True for a `connect` (the socket is connected), false for a `listen`.";
    "fd.name_changed", FdNameChanged, Bool, None, Filled::Events(K_FILE|K_NET),
        "True when the event gave the descriptor its name: a `connect` (the connection tuple is set by it); false for other file and network events.";
    "fd.cip.name", Unfilled, Charbuf, None, Filled::Never,
        "The client address's domain name, from DNS traffic Falco saw. driftwatch resolves no names.";
    "fd.sip.name", Unfilled, Charbuf, None, Filled::Never,
        "The server address's domain name, from DNS traffic Falco saw. driftwatch resolves no names.";
    "fd.lip.name", Unfilled, Charbuf, None, Filled::Never,
        "The local address's domain name. driftwatch resolves no names.";
    "fd.rip.name", Unfilled, Charbuf, None, Filled::Never,
        "The remote address's domain name. driftwatch resolves no names.";
    "fd.dev", Unfilled, Int32, None, Filled::Never,
        "The device number of the file's filesystem.";
    "fd.dev.major", Unfilled, Int32, None, Filled::Never,
        "Major part of `fd.dev`.";
    "fd.dev.minor", Unfilled, Int32, None, Filled::Never,
        "Minor part of `fd.dev`.";
    "fd.ino", Unfilled, Int64, None, Filled::Never,
        "The file's inode number.";
    "fd.nameraw", FdNameraw, Charbuf, None, Filled::Events(K_FILE),
        "The path as the call named it. driftwatch sees the resolved path (no `..` or `.` components), so this is `fd.name` for file events.";
    "fd.types", Unfilled, Charbuf, Index, Filled::Never,
        "The types of the process's open descriptors (`fd.types[N]` for descriptor N). driftwatch does not track descriptor tables.";
    "fd.is_upper_layer", Unfilled, Bool, None, Filled::Never,
        "True if the file is in the overlay's upper layer. Use `drift.verdict`.";
    "fd.is_lower_layer", Unfilled, Bool, None, Filled::Never,
        "True if the file is in an image layer. Use `drift.verdict`.";
    "fdlist.nums", Unfilled, Charbuf, None, Filled::Never,
        "Descriptor numbers of a poll call.";
    "fdlist.names", Unfilled, Charbuf, None, Filled::Never,
        "Descriptor names of a poll call.";
    "fdlist.cips", Unfilled, Charbuf, None, Filled::Never,
        "Client addresses of a poll call's descriptors.";
    "fdlist.sips", Unfilled, Charbuf, None, Filled::Never,
        "Server addresses of a poll call's descriptors.";
    "fdlist.cports", Unfilled, Charbuf, None, Filled::Never,
        "Client ports of a poll call's descriptors.";
    "fdlist.sports", Unfilled, Charbuf, None, Filled::Never,
        "Server ports of a poll call's descriptors.";
    "fs.path.name", FsPathName, Charbuf, None, Filled::Events(K_FILE),
        "The path the file event is about, resolved, inside the container (`fd.name`).";
    "fs.path.nameraw", FsPathNameraw, Charbuf, None, Filled::Events(K_FILE),
        "As `fs.path.name` (driftwatch sees resolved paths only).";
    "fs.path.source", FsPathSource, Charbuf, None, Filled::Events(K_RENAME|K_SYMLINK),
        "For a rename the old path; for a symlink the link's target, as stored.";
    "fs.path.sourceraw", FsPathSourceraw, Charbuf, None, Filled::Events(K_RENAME|K_SYMLINK),
        "As `fs.path.source`.";
    "fs.path.target", FsPathTarget, Charbuf, None, Filled::Events(K_RENAME|K_SYMLINK),
        "For a rename the new path; for a symlink the link's path.";
    "fs.path.targetraw", FsPathTargetraw, Charbuf, None, Filled::Events(K_RENAME|K_SYMLINK),
        "As `fs.path.target`.";
    "container.id", ContainerId, Charbuf, None, Filled::Always,
        "The container's 12-character short id, or `host` for processes outside containers (Falco's `container` macro is `container.id != host`).";
    "container.full_id", ContainerFullId, Charbuf, None, Filled::Always,
        "The container's 64-character id, or `host`.";
    "container.name", ContainerName, Charbuf, None, Filled::Always,
        "The container's name, or `host`.";
    "container.image", ContainerImage, Charbuf, None, Filled::Always,
        "The image as `repository:tag` (the repository alone when untagged).";
    "container.image.id", ContainerImageId, Charbuf, None, Filled::Always,
        "The image id (`sha256:...` of its config).";
    "container.type", ContainerType, Charbuf, None, Filled::Always,
        "The engine running the container: `docker`, `containerd`, `podman`, `cri-o`, `unknown`, or `host`.";
    "container.privileged", ContainerPrivileged, Bool, None, Filled::Always,
        "True if the container runs privileged; missing when its engine did not say (or on the host).";
    "container.mounts", ContainerMounts, Charbuf, None, Filled::Always,
        "Every mount as `source:dest:mode:rdwr:propagation` (rdwr `true` or `false`), separated by commas as the container plugin prints them. Missing when the engine reported none.";
    "container.mount", ContainerMount, Charbuf, IndexOrKeyRequired, Filled::Always,
        "One mount as `source:dest:mode:rdwr:propagation`: by position (`container.mount[0]`) or by source path, a glob allowed (`container.mount[/var/run/*]`, the first match). `none` when there is no such mount (as Falco).";
    "container.mount.source", ContainerMountSource, Charbuf, IndexOrKeyRequired, Filled::Always,
        "A mount's source: by position or by destination path (a glob allowed), e.g. `container.mount.source[/host]`. `<NA>` when the container has no such mount (as the container plugin), missing on the host.";
    "container.mount.dest", ContainerMountDest, Charbuf, IndexOrKeyRequired, Filled::Always,
        "A mount's destination inside the container: by position or by source path (a glob allowed), e.g. `container.mount.dest[/var/run/docker.sock]`. `<NA>` when the container has no such mount (as the container plugin), missing on the host.";
    "container.mount.mode", ContainerMountMode, Charbuf, IndexOrKeyRequired, Filled::Always,
        "A mount's mode string (`ro`, `z`...): by position or by source path (a glob allowed).";
    "container.mount.rdwr", ContainerMountRdwr, Charbuf, IndexOrKeyRequired, Filled::Always,
        "Whether a mount is read-write, `true` or `false`: by position or by source path (a glob allowed).";
    "container.mount.propagation", ContainerMountPropagation, Charbuf, IndexOrKeyRequired, Filled::Always,
        "A mount's propagation (`rprivate`, `rshared`...): by position or by source path (a glob allowed).";
    "container.image.repository", ContainerImageRepository, Charbuf, None, Filled::Always,
        "The image repository, e.g. `nginx` or `registry.example.com/team/app`.";
    "container.image.tag", ContainerImageTag, Charbuf, None, Filled::Always,
        "The image tag, e.g. `1.27`.";
    "container.image.digest", ContainerImageDigest, Charbuf, None, Filled::Always,
        "The image's repository digest (`sha256:...`), or its id when the engine knows no digest.";
    "container.healthcheck", Unfilled, Charbuf, None, Filled::Never,
        "The container's health check command. driftwatch's engines do not report it.";
    "container.liveness_probe", Unfilled, Charbuf, None, Filled::Never,
        "The pod's liveness probe command.";
    "container.readiness_probe", Unfilled, Charbuf, None, Filled::Never,
        "The pod's readiness probe command.";
    "container.start_ts", ContainerStartTs, Abstime, None, Filled::Always,
        "When the container started, nanoseconds since the epoch, when its engine said.";
    "container.duration", ContainerDuration, Reltime, None, Filled::Always,
        "Nanoseconds since the container started, when its start is known.";
    "container.ip", Unfilled, Charbuf, None, Filled::Never,
        "The container's IP address.";
    "container.cni.json", Unfilled, Charbuf, None, Filled::Never,
        "The container's CNI result, as JSON.";
    "container.host_pid", Unfilled, Bool, None, Filled::Never,
        "True if the container shares the host's pid namespace. See config drift (`drift.subject = host_namespace`).";
    "container.host_network", Unfilled, Bool, None, Filled::Never,
        "True if the container shares the host's network namespace. See config drift.";
    "container.host_ipc", Unfilled, Bool, None, Filled::Never,
        "True if the container shares the host's IPC namespace. See config drift.";
    "container.label", ContainerLabel, Charbuf, KeyRequired, Filled::Always,
        "One of the container's labels (`container.label[com.example.team]`); missing when it has no such label.";
    "container.labels", ContainerLabels, Charbuf, None, Filled::Always,
        "The container's labels as Falco prints them: `key:value` pairs separated by `, ` in key order (a label with an empty value as its key alone), without `io.kubernetes.*` and `annotation.*` keys. Missing when there are none.";
    "proc.is_container_healthcheck", Unfilled, Bool, None, Filled::Never,
        "True if the process is the container's health check.";
    "proc.is_container_liveness_probe", Unfilled, Bool, None, Filled::Never,
        "True if the process is the pod's liveness probe.";
    "proc.is_container_readiness_probe", Unfilled, Bool, None, Filled::Never,
        "True if the process is the pod's readiness probe.";
    "k8s.pod.name", K8sPodName, Charbuf, None, Filled::Always,
        "The Kubernetes pod name.";
    "k8s.ns.name", K8sNsName, Charbuf, None, Filled::Always,
        "The Kubernetes namespace of the pod.";
    "k8s.pod.id", K8sPodId, Charbuf, None, Filled::Always,
        "Deprecated spelling of `k8s.pod.uid`.";
    "k8s.pod.uid", K8sPodUid, Charbuf, None, Filled::Always,
        "The Kubernetes pod uid.";
    "k8s.pod.sandbox_id", Unfilled, Charbuf, None, Filled::Never,
        "The pod sandbox's short id.";
    "k8s.pod.full_sandbox_id", Unfilled, Charbuf, None, Filled::Never,
        "The pod sandbox's full id.";
    "k8s.pod.label", K8sPodLabel, Charbuf, KeyRequired, Filled::Always,
        "One label of the pod, as the container runtime reports the pod (CRI pod sandbox; cri-dockerd's sandbox labels): `k8s.pod.label[app]`, `k8s.pod.label[app.kubernetes.io/name]`, or Falco's other spelling `k8s.pod.label.app` (for keys of letters, digits, `_` and `.` only: a key with `/` or `-` needs the brackets). Missing when the pod has no such label or no runtime reported its labels.";
    "k8s.pod.labels", K8sPodLabels, Charbuf, None, Filled::Always,
        "The pod's labels as Falco prints them: `key:value` pairs separated by `, ` in key order (a label with an empty value as its key alone), without `io.kubernetes.*` and `annotation.*` keys. Missing when there are none.";
    "k8s.pod.ip", Unfilled, Charbuf, None, Filled::Never,
        "The pod's IP address.";
    "k8s.pod.cni.json", Unfilled, Charbuf, None, Filled::Never,
        "The pod's CNI result, as JSON.";
    "k8s.rc.name", Unfilled, Charbuf, None, Filled::Never,
        "The replication controller's name.";
    "k8s.rc.id", Unfilled, Charbuf, None, Filled::Never,
        "The replication controller's id.";
    "k8s.rc.label", Unfilled, Charbuf, KeyRequired, Filled::Never,
        "One label of the replication controller.";
    "k8s.rc.labels", Unfilled, Charbuf, None, Filled::Never,
        "The replication controller's labels.";
    "k8s.svc.name", Unfilled, Charbuf, None, Filled::Never,
        "The service's name.";
    "k8s.svc.id", Unfilled, Charbuf, None, Filled::Never,
        "The service's id.";
    "k8s.svc.label", Unfilled, Charbuf, KeyRequired, Filled::Never,
        "One label of the service.";
    "k8s.svc.labels", Unfilled, Charbuf, None, Filled::Never,
        "The service's labels.";
    "k8s.ns.id", Unfilled, Charbuf, None, Filled::Never,
        "The namespace's id.";
    "k8s.ns.label", Unfilled, Charbuf, KeyRequired, Filled::Never,
        "One label of the namespace.";
    "k8s.ns.labels", Unfilled, Charbuf, None, Filled::Never,
        "The namespace's labels.";
    "k8s.rs.name", Unfilled, Charbuf, None, Filled::Never,
        "The replica set's name.";
    "k8s.rs.id", Unfilled, Charbuf, None, Filled::Never,
        "The replica set's id.";
    "k8s.rs.label", Unfilled, Charbuf, KeyRequired, Filled::Never,
        "One label of the replica set.";
    "k8s.rs.labels", Unfilled, Charbuf, None, Filled::Never,
        "The replica set's labels.";
    "k8s.deployment.name", Unfilled, Charbuf, None, Filled::Never,
        "The deployment's name.";
    "k8s.deployment.id", Unfilled, Charbuf, None, Filled::Never,
        "The deployment's id.";
    "k8s.deployment.label", Unfilled, Charbuf, KeyRequired, Filled::Never,
        "One label of the deployment.";
    "k8s.deployment.labels", Unfilled, Charbuf, None, Filled::Never,
        "The deployment's labels.";
    "fd.oldname", FdOldname, Charbuf, None, Filled::Events(K_RENAME),
        "For a rename: the old path (driftwatch's own; Falco's is `evt.arg.oldpath`, also filled).";
    "drift.kind", DriftKind, Charbuf, None, Filled::Always,
        "The kind of drift the agent found: `binary`, `file`, `package`, `config`, `network` or `image`. Missing when the event carries no drift finding.";
    "drift.verdict", DriftVerdict, Charbuf, None, Filled::Always,
        "Where the judged file came from: `image`, `copy_up` (not drift), `added`, `modified`, `metadata` (the image's bytes, made executable in the container and run: `drift.detail` gives the mode change), `memfd`, `deleted`, `tmpfs`, `volume`, `unjudged` (an upper-layer file that could not be judged: reported, never accepted) or `unknown`. For config drift: `added` (not in the image's config), `modified` (changed from the image's), `deleted`, or `image` (a weak setting inherited unchanged from the image or the engine's defaults). For image drift: `unapproved`, `unknown` or `mutable_tag` (approval), `modified`, `deleted` or `added` (a file of an image layer on the host).";
    "drift.subject", DriftSubject, Charbuf, None, Filled::Always,
        "Which part of an exec the finding is about: `exe`, `script` (a script run by its shebang), `loader_target` (`ld.so /path`) or `preload` (`LD_PRELOAD`). For config drift, the setting: `env` (a variable added or changed from the image's; at exec only code-loading ones), and on `container` events `privileged`, `cap_add`, `host_namespace`, `sensitive_mount`, `writable_rootfs`, `root_user`, `seccomp_unconfined`, `apparmor_unconfined`; `mounted_file` for a bind-mounted secret or config file changed. For image drift: `image_digest` (the image against the approved list) or `image_layer` (an image layer on the host changed).";
    "drift.path", DriftPath, Charbuf, None, Filled::Always,
        "The path, inside the container, of the file judged. For config drift, what the setting names: a variable, a capability (`CAP_SYS_ADMIN`), a namespace (`pid`), a mount point, a user.";
    "drift.hash", DriftHash, Charbuf, None, Filled::Always,
        "blake3 of the drifted file's content, when it could be read.";
    "drift.image_hash", DriftImageHash, Charbuf, None, Filled::Always,
        "blake3 of the image's file at the same path (for `modified`).";
    "drift.layer", DriftLayer, Charbuf, None, Filled::Always,
        "The diff id (`sha256:...`) of the topmost image layer that has the file at this path: for an executed image file the layer it came from; for a modified file the layer of the image's copy. Missing for a file the image does not have. Filled when the agent reports the finding (and, for an exec of an image file, in the outputs of the alerts it raises).";
    "drift.package", DriftPackage, Charbuf, None, Filled::Always,
        "The package that owns the file, from the image's or the container's package database (dpkg, apk, rpm): for a modified file the package whose file it is, for a new file the package that installed it (`apt-get install` reads differently from a dropped payload). Missing when no package lists the path.";
    "drift.package_version", DriftPackageVersion, Charbuf, None, Filled::Always,
        "The version of `drift.package`, as its database records it.";
    "drift.package_ecosystem", DriftPackageEcosystem, Charbuf, None, Filled::Always,
        "The package database `drift.package` comes from: `dpkg`, `apk` or `rpm`.";
    "drift.package_digest", DriftPackageDigest, Charbuf, None, Filled::Always,
        "The file against the package manager's own digest of it (dpkg md5sums, apk's SHA-1, rpm's file digests): `match`, `mismatch` (modified against the package, whatever the layers say) or `unknown` (no digest recorded, or unreadable). Missing for image files and files no package owns.";
    "drift.detail", DriftDetail, Charbuf, None, Filled::Always,
        "What changed, in words: for package drift the packages added, removed and changed with their versions; for config drift the setting and its value.";
    "drift.enforcement", DriftEnforcement, Charbuf, None, Filled::Events(K_EXEC),
        "The enforcement mode of the container's scope when a binary-drift exec was judged: `detect` or `prevent`. Missing for other kinds of drift.";
    "drift.action", DriftAction, Charbuf, None, Filled::Events(K_EXEC),
        "What enforcement did about a binary-drift exec: `alerted` (detect mode: it ran), `blocked` (prevented before its first instruction), `killed` (it had started when judged, then was killed by the agent) or `failed` (prevent mode, but it could not be stopped).";
    "drift.blocked_by", DriftBlockedBy, Charbuf, None, Filled::Events(K_EXEC),
        "Which mechanism stopped it: `fanotify_deny` (exec permission denied, the caller got EPERM), `bpf_sigkill` (killed in the kernel at exec: memfd), `bpf_hold` (held with SIGSTOP at exec, judged, killed before running) or `agent_sigkill` (killed by the agent after it started). Missing when nothing stopped it.";
    "drift.interpreter", DriftInterpreter, Charbuf, None, Filled::Events(K_EXEC),
        "For an exec of an interpreter (by file name: sh, bash, dash, ash, busybox sh, python*, perl, ruby, node, php, lua, Rscript, java, tclsh, ...; configurable): its family, `shell`, `python`, `perl`, `ruby`, `node`, `php`, `lua`, `r`, `java` or `tcl`. Missing for other execs.";
    "drift.invocation", DriftInvocation, Charbuf, None, Filled::Events(K_EXEC),
        "What the interpreter was asked to run, by its own option grammar: `script` (a program file named on the command line), `inline` (code given with `-c`, `-e`, `--eval`, `-r`, ...), `stdin` (the program comes from standard input: `-`, `-s`, or no program named) or `other` (a module or class, `python3 -m mod`, or a query such as `--version`). Missing for other execs.";
    "drift.inline_flag", DriftInlineFlag, Charbuf, None, Filled::Events(K_EXEC),
        "For `drift.invocation = inline`: the option that carried the code, as written (`-c`, `-e`, `--eval`, `-ec`).";
    "drift.inline_code", DriftInlineCode, Charbuf, None, Filled::Events(K_EXEC),
        "For `drift.invocation = inline`: the code, exactly as passed (quotes, newlines and control characters included), its first 1024 bytes.";
    "drift.stdin", DriftStdin, Charbuf, None, Filled::Events(K_EXEC),
        "For `drift.invocation = stdin`: what standard input was when the agent looked at the live process: `pipe` (`curl ... | sh`), `socket`, `tty` (an interactive shell), `null`, `file`, `closed`, or `gone` (the process had already exited: it cannot be told).";
    "drift.inline_learned", DriftInlineLearned, Bool, None, Filled::Events(K_EXEC),
        "For inline code (`drift.invocation = inline`, or `stdin` from a pipe, a socket or `gone`): true when the image ran the same kind of inline code during its learning window (same interpreter family, option, parent process name and code head; learned then, or now while the window is open), false once the window is over and it never did. Missing for other execs and when the container's image is not known.";
}
