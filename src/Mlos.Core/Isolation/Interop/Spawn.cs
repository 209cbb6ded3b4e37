using System.Runtime.InteropServices;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Isolation.Interop;

/// <summary>
/// The one boundary file for starting, waiting for and stopping plugin host processes:
/// posix_spawn (no fork of a .NET process: vfork-style, nothing of ours runs in the child) with the
/// host's channel placed at fixed descriptor numbers, waitpid and kill.
/// </summary>
internal static unsafe partial class Spawn
{
    private const string LibC = "libc.so.6";
    private const int EINTR = 4;
    public const int SIGKILL = 9, SIGTERM = 15;

    [LibraryImport(LibC, EntryPoint = "posix_spawn")]
    private static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(LibC, EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int ActionsInit(void* actions);

    [LibraryImport(LibC, EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static partial int ActionsDup2(void* actions, int fd, int newFd);

    [LibraryImport(LibC, EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int ActionsDestroy(void* actions);

    [LibraryImport(LibC, EntryPoint = "waitpid", SetLastError = true)]
    private static partial int WaitPid(int pid, int* status, int options);

    [LibraryImport(LibC, EntryPoint = "waitid", SetLastError = true)]
    private static partial int WaitId(int idType, int id, byte* info, int options);

    [LibraryImport(LibC, EntryPoint = "kill")]
    public static partial int Kill(int pid, int signal);

    /// <summary>
    /// Starts <paramref name="path"/> with <paramref name="args"/> and this process's environment,
    /// <paramref name="fds"/>[i] placed at descriptor 3 + i in the child (every other descriptor of
    /// ours is close-on-exec). Returns the pid; throws with the reason when it cannot start.
    /// </summary>
    public static int Start(string path, IReadOnlyList<string> args, ReadOnlySpan<int> fds)
    {
        var strings = new List<nint>();
        byte* actions = stackalloc byte[256]; // posix_spawn_file_actions_t is 80 bytes on glibc x86-64
        var moved = new int[fds.Length];
        bool actionsMade = false;
        try
        {
            // Each descriptor first gets a number above the targets, so that placing one never
            // overwrites another still to be placed (dup2 onto itself would also keep close-on-exec).
            for (int i = 0; i < fds.Length; i++) moved[i] = UnixSocket.DuplicateAbove(fds[i], 3 + fds.Length);
            if (ActionsInit(actions) != 0) throw new MlosException(Smi.Abi.SmiStatus.Runtime, "posix_spawn_file_actions_init failed");
            actionsMade = true;
            for (int i = 0; i < fds.Length; i++) ActionsDup2(actions, moved[i], 3 + i);

            byte** argv = stackalloc byte*[args.Count + 2];
            argv[0] = Keep(strings, path);
            for (int i = 0; i < args.Count; i++) argv[i + 1] = Keep(strings, args[i]);
            argv[args.Count + 1] = null;

            var environment = Environment.GetEnvironmentVariables();
            var envp = new nint[environment.Count + 1];
            int e = 0;
            foreach (System.Collections.DictionaryEntry entry in environment)
                envp[e++] = (nint)Keep(strings, $"{entry.Key}={entry.Value}");
            int pid;
            int rc;
            fixed (nint* env = envp)
            fixed (byte* file = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
                rc = PosixSpawn(&pid, file, actions, null, argv, (byte**)env);
            if (rc != 0)
                throw new MlosException(Smi.Abi.SmiStatus.Runtime, $"cannot start the plugin host {path}: {Marshal.GetPInvokeErrorMessage(rc)}");
            return pid;
        }
        finally
        {
            if (actionsMade) ActionsDestroy(actions);
            foreach (int fd in moved) if (fd > 0) UnixSocket.Close(fd);
            foreach (var s in strings) NativeMemory.Free((void*)s);
        }
    }

    private static byte* Keep(List<nint> strings, string text)
    {
        var p = Utf8.Allocate(text);
        strings.Add((nint)p);
        return p;
    }

    /// <summary>
    /// Waits for <paramref name="pid"/> to end without reaping it: until <see cref="WaitForExit"/>
    /// collects it, the pid stays a zombie's and cannot name another process, so a kill meanwhile
    /// can only reach the host.
    /// </summary>
    public static void WaitUntilEnded(int pid)
    {
        const int P_PID = 1, WEXITED = 4, WNOWAIT = 0x01000000;
        byte* info = stackalloc byte[128]; // siginfo_t
        int r;
        do r = WaitId(P_PID, pid, info, WEXITED | WNOWAIT);
        while (r < 0 && Marshal.GetLastPInvokeError() == EINTR);
    }

    /// <summary>Waits for <paramref name="pid"/> to end, reaps it and says how it ended ("exit status 3", "SIGSEGV").</summary>
    public static string WaitForExit(int pid)
    {
        int status, r;
        do r = WaitPid(pid, &status, 0);
        while (r < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (r < 0) return "ended (its exit status was collected elsewhere)";
        int signal = status & 0x7f;
        return signal == 0 ? $"exit status {(status >> 8) & 0xff}" : SignalName(signal);
    }

    public static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP", 2 => "SIGINT", 3 => "SIGQUIT", 4 => "SIGILL", 5 => "SIGTRAP", 6 => "SIGABRT",
        7 => "SIGBUS", 8 => "SIGFPE", 9 => "SIGKILL", 11 => "SIGSEGV", 13 => "SIGPIPE", 14 => "SIGALRM",
        15 => "SIGTERM", 24 => "SIGXCPU", 25 => "SIGXFSZ", 31 => "SIGSYS",
        _ => $"signal {signal}",
    };
}
