using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// Drives Debian's h2load (nghttp2-client; C, epoll like wrk) with one fixed POST body: over
/// HTTP/2 cleartext for gRPC, or over HTTP/1.1 (<c>--h1</c>) so that REST is measured by the
/// same load generator. Like <see cref="Wrk"/>: 1 s of warm-up (a run of its own), then the
/// measured run. h2load prints no percentiles, so p50 and p99 come from its per-request log.
/// h2load judges a response by its HTTP status alone, and a failed gRPC call is a 200 with a
/// non-zero grpc-status trailer: a run that is given the server's own inference counts fails
/// unless they rose by what h2load counts.
/// </summary>
internal static partial class H2load
{
    /// <param name="connections">h2load's -c; its -t is at most 2 and at most this (as wrk's).</param>
    /// <param name="streams">Requests in flight on each connection (-m); over HTTP/1.1 it must be 1 (no pipelining).</param>
    /// <param name="server">When given, the server under load: its counts of succeeded and failed inferences of
    /// <paramref name="model"/> and its CPU time are probed around the measured run.</param>
    /// <param name="report">false: print no HTTP line (a round of <see cref="Wrk.Paired"/>).</param>
    public static LoadResult Run(string name, string url, string bodyFile, string[] headers, bool http1, int connections, int streams,
        MlosServer? server = null, string? model = null, int? seconds = null, bool report = true)
    {
        var log = Path.Combine(Path.GetDirectoryName(bodyFile)!, "h2load.log");
        Invoke(url, bodyFile, headers, http1, connections, streams, seconds: 1, log); // warm-up: JIT, pools, caches
        var before = server is null || model is null ? default(InferStats?) : server.Stats(model).GetAwaiter().GetResult();
        double cpu = server?.CpuSeconds ?? 0;
        var text = Invoke(url, bodyFile, headers, http1, connections, streams, seconds ?? Wrk.Seconds, log);
        cpu = (server?.CpuSeconds ?? 0) - cpu;
        var after = server is null || model is null ? default(InferStats?) : server.Stats(model).GetAwaiter().GetResult();

        var requests = Match(RequestsRegex(), text);
        long done = long.Parse(requests.Groups["done"].Value), succeeded = long.Parse(requests.Groups["succeeded"].Value);
        var codes = Match(StatusRegex(), text);
        long ok2xx = long.Parse(codes.Groups[1].Value);
        long errors = done - ok2xx + long.Parse(requests.Groups["timeout"].Value);
        // Latency of each request of the measured run: the log's third column, in µs.
        var micros = File.ReadLines(log).Select(l => l.Split('\t')).Where(f => f.Length == 3).Select(f => long.Parse(f[2]) / 1000.0).Order().ToArray();
        if (micros.Length == 0) throw new InvalidOperationException($"h2load logged no requests:\n{text}");
        var result = new LoadResult(name, connections, double.Parse(Match(RpsRegex(), text).Groups[1].Value, CultureInfo.InvariantCulture),
            micros[(int)(micros.Length * 0.50)], micros[Math.Min(micros.Length - 1, (int)(micros.Length * 0.99))], done, errors)
        { ServerCpuUsPerRequest = server is null ? null : cpu * 1e6 / Math.Max(1, done) };
        Console.WriteLine($"  {result}, {result.Errors} errors");
        if (before is { } b && after is { } a) CheckServed(name, b, a, succeeded, connections * streams);
        if (report) Report.Http(result);
        return result;
    }

    /// <summary>
    /// The server succeeded at about as many inferences as h2load saw succeed (requests in flight
    /// when a run stops, the warm-up's or the measured one's, may still complete on the server: at
    /// most one per stream each) and failed none.
    /// </summary>
    private static void CheckServed(string name, InferStats before, InferStats after, long succeeded, int inFlight)
    {
        long success = after.Success - before.Success, fail = after.Fail - before.Fail;
        Console.WriteLine($"  server counted {success} inferences succeeded and {fail} failed; h2load counted {succeeded} succeeded");
        if (fail != 0 || success < succeeded || success > succeeded + 2 * inFlight)
            throw new InvalidOperationException($"{name}: the server counted {success} inferences succeeded and {fail} failed " +
                $"while h2load counted {succeeded} succeeded (a 200 with a failing grpc-status counts as success to h2load)");
    }

    private static string Invoke(string url, string bodyFile, string[] headers, bool http1, int connections, int streams, int seconds, string log)
    {
        File.Delete(log); // h2load appends to its log
        List<string> args = [$"-c{connections}", $"-m{streams}", $"-t{Math.Min(2, connections)}", $"-D{seconds}", $"--log-file={log}", "-d", bodyFile];
        if (http1) args.Add("--h1");
        foreach (var h in headers) args.AddRange(["-H", h]);
        args.Add(url);
        var info = new ProcessStartInfo("h2load", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd() + stderr.Result;
        p.WaitForExit();
        if (p.ExitCode != 0 || !RpsRegex().IsMatch(output)) throw new InvalidOperationException($"h2load failed ({p.ExitCode}): {output}");
        return output;
    }

    private static Match Match(Regex regex, string text)
    {
        var m = regex.Match(text);
        return m.Success ? m : throw new InvalidOperationException($"unexpected h2load output:\n{text}");
    }

    [GeneratedRegex(@"finished in [\d.]+m?s, ([\d.]+) req/s")] private static partial Regex RpsRegex();
    [GeneratedRegex(@"requests: \d+ total, \d+ started, (?<done>\d+) done, (?<succeeded>\d+) succeeded, \d+ failed, \d+ errored, (?<timeout>\d+) timeout")]
    private static partial Regex RequestsRegex();
    [GeneratedRegex(@"status codes: (\d+) 2xx")] private static partial Regex StatusRegex();
}
