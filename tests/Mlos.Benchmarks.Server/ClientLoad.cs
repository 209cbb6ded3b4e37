using System.Diagnostics;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// A bounded load generator in this process, for requests wrk and h2load cannot make (shared
/// memory: the client writes and reads regions around each request) or that the comparison
/// wants made by the very same client both ways: <c>tasks</c> concurrent loops, each one request
/// at a time, for a warm-up and then a measured time. A run counts the requests that completed
/// inside the measured time (so neither the warm-up's nor the last in-flight ones bias it); a
/// request that throws is an error, and any error fails the run.
/// </summary>
internal static class ClientLoad
{
    /// <param name="request">One request by loop <c>i</c> (0 ≤ i &lt; tasks), which owns whatever it reuses; throws when it fails.</param>
    /// <param name="server">When given, the server under load, whose CPU time is probed around the measured time.</param>
    /// <param name="report">false: print no HTTP line (a round of <see cref="Wrk.Paired"/>).</param>
    public static LoadResult Run(string name, int tasks, Func<int, Task> request, double warmUpSeconds, int seconds, MlosServer? server = null, bool report = true) =>
        RunAsync(name, tasks, request, warmUpSeconds, seconds, server, report).GetAwaiter().GetResult();

    private static async Task<LoadResult> RunAsync(string name, int tasks, Func<int, Task> request, double warmUpSeconds, int seconds, MlosServer? server, bool report)
    {
        long from = Stopwatch.GetTimestamp() + (long)(warmUpSeconds * Stopwatch.Frequency);
        long until = from + seconds * Stopwatch.Frequency;
        // The server's CPU time at the start and the end of the measured time, read by a timer of its own.
        double cpuFrom = 0, cpuUntil = 0;
        var cpuProbe = server is null ? Task.CompletedTask : Task.Run(async () =>
        {
            await Until(from);
            cpuFrom = server.CpuSeconds;
            await Until(until);
            cpuUntil = server.CpuSeconds;
        });
        var loops = Enumerable.Range(0, tasks).Select(i => Task.Run(async () =>
        {
            var latencies = new List<double>();
            long errors = 0;
            while (Stopwatch.GetTimestamp() < until)
            {
                long start = Stopwatch.GetTimestamp();
                bool ok = true;
                try { await request(i); }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    ok = false;
                    if (Interlocked.Increment(ref s_printed) <= 3) Console.WriteLine($"  {name}: {e.Message}");
                }
                long end = Stopwatch.GetTimestamp();
                if (end < from || end > until) continue;
                if (ok) latencies.Add(Stopwatch.GetElapsedTime(start, end).TotalMilliseconds);
                else errors++;
            }
            return (latencies, errors);
        })).ToArray();
        var done = await Task.WhenAll(loops);
        await cpuProbe;
        var all = done.SelectMany(d => d.latencies).Order().ToArray();
        long failed = done.Sum(d => d.errors);
        // A failed request fails the run (the first few were printed): a ratio over failures would mean nothing.
        if (failed > 0 || all.Length == 0) throw new InvalidOperationException($"{name}: {failed} requests failed, {all.Length} succeeded in {seconds} s");
        var result = new LoadResult(name, tasks, all.Length / (double)seconds, all[all.Length / 2], all[Math.Min(all.Length - 1, (int)(all.Length * 0.99))],
            all.Length + failed, failed)
        { ServerCpuUsPerRequest = server is null ? null : (cpuUntil - cpuFrom) * 1e6 / all.Length };
        Console.WriteLine($"  {result}, {result.Errors} errors");
        if (report) Report.Http(result);
        return result;
    }

    private static Task Until(long timestamp) => Task.Delay(TimeSpan.FromTicks(Math.Max(0, Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), timestamp).Ticks)));

    private static int s_printed; // the first few failures are printed, not every one
}
