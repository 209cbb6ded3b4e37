using Mlos.Fuzz;
using SharpFuzz;

// Mlos.Fuzz TARGET: under afl-fuzz, a SharpFuzz fork server that runs TARGET on each input
// (alone, one run on standard input). Mlos.Fuzz TARGET FILE...: replays saved inputs.
Action<ReadOnlySpan<byte>>? target = args.Length > 0 ? args[0] switch
{
    "kserve" => KServeTarget.Run,
    "convention" => ConventionTarget.Run,
    "core" => CoreTarget.Run,
    _ => null,
} : null;
if (target is null)
{
    Console.Error.WriteLine("usage: Mlos.Fuzz kserve|convention|core [FILE...]");
    return 2;
}
if (args.Length > 1) return Replay.Run(target, args[1..]);

// Out of process: SharpFuzz runs the target in a child process that it restarts when it dies,
// so a hang or an uncatchable fault (stack overflow, access violation) is recorded as a finding
// instead of ending the whole afl-fuzz run, as it would in process (which is ~25% faster here).
var buffer = new byte[1 << 16];
Fuzzer.OutOfProcess.Run(stream =>
{
    int length = 0, read;
    while ((read = stream.Read(buffer, length, buffer.Length - length)) > 0)
        if ((length += read) == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
    target(buffer.AsSpan(0, length));
});
return 0;
