using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Mlos.Benchmarks.Server;

/// <summary>One load run's numbers.</summary>
internal sealed record LoadResult(string Name, int Connections, double RequestsPerSecond, double P50Ms, double P99Ms, long Requests, long Errors)
{
    /// <summary>How a ratio line quotes it.</summary>
    public override string ToString() => $"{Name} ({Connections} conn): {RequestsPerSecond:F0} req/s, p50 {P50Ms:F2} ms, p99 {P99Ms:F2} ms" +
        (ServerCpuUsPerRequest is { } cpu ? $", server CPU {cpu:F0} us/req" : "");

    /// <summary>Managed bytes the server allocated per request in the measured run, when probed.</summary>
    public double? AllocatedPerRequest { get; init; }

    /// <summary>CPU time the server used per request in the measured run (<see cref="MlosServer.CpuSeconds"/>), when probed.</summary>
    public double? ServerCpuUsPerRequest { get; init; }
}

/// <summary>
/// Drives Debian's wrk (C, epoll: the lightest load generator here, so the server under test gets
/// most of the 2 cores) with tests/bench/post.lua, and reads its latency distribution. Each run
/// first sends one request itself (a refused request fails the run instead of timing errors),
/// then 1 s of warm-up, then <see cref="Seconds"/> measured.
/// </summary>
internal static partial class Wrk
{
    public static string Script { get; set; } = "tests/bench/post.lua";
    /// <summary>Connections of a run that names none.</summary>
    public static int Connections { get; set; } = 64;
    public static int Seconds { get; set; } = 5;

    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(60) };

    /// <param name="allocated">Reads the server's allocated-bytes counter; probed around the measured run only.</param>
    /// <param name="connections">wrk's -c (default <see cref="Connections"/>); its -t is at most 2 and at most this.</param>
    /// <param name="seconds">How long the measured run lasts (default <see cref="Seconds"/>).</param>
    /// <param name="report">false: print no HTTP line (a round of <see cref="Paired"/>, which reports its median).</param>
    public static LoadResult Run(string name, string url, string bodyFile, string contentType, int? headerLength = null, Func<long>? allocated = null,
        int? connections = null, int? seconds = null, bool report = true)
    {
        int c = connections ?? Connections;
        Check(url, bodyFile, contentType, headerLength);
        Invoke(url, bodyFile, contentType, headerLength, c, seconds: 1); // warm-up: JIT, pools, caches
        long before = allocated?.Invoke() ?? 0;
        var text = Invoke(url, bodyFile, contentType, headerLength, c, seconds ?? Seconds);
        long after = allocated?.Invoke() ?? 0;
        var result = new LoadResult(name, c,
            Number(RpsRegex(), text),
            Latency(text, "50%"),
            Latency(text, "99%"),
            (long)Number(RequestsRegex(), text),
            (long)(RegexOrZero(Non2xxRegex(), text) + RegexOrZero(SocketErrorsRegex(), text)));
        if (allocated is not null)
        {
            result = result with { AllocatedPerRequest = (after - before) / (double)Math.Max(1, result.Requests) };
            Console.WriteLine($"FACT\tHot path\tmanaged bytes allocated per request: {name}\t{result.AllocatedPerRequest:F0} B");
        }
        Console.WriteLine($"  {result}, {result.Errors} errors");
        if (report) Report.Http(result);
        return result;
    }

    /// <summary>
    /// Two configurations compared on these noisy shared cores (any load generator's runs:
    /// wrk's, <see cref="H2load"/>'s, <see cref="ClientLoad"/>'s): <paramref name="rounds"/> short
    /// runs of each, alternating (so that a burst of noise hits both), and each one's median run
    /// by throughput, reported as its HTTP line. One 5 s run each moved ratios by ±20%.
    /// </summary>
    public static (LoadResult A, LoadResult B) Paired(Func<int, bool, LoadResult> a, Func<int, bool, LoadResult> b, int rounds = 3, int seconds = 3)
    {
        var runsA = new List<LoadResult>();
        var runsB = new List<LoadResult>();
        for (int i = 0; i < rounds; i++)
        {
            runsA.Add(a(seconds, false));
            runsB.Add(b(seconds, false));
        }
        var (medianA, medianB) = (Median(runsA), Median(runsB));
        Report.Http(medianA);
        Report.Http(medianB);
        return (medianA, medianB);
    }

    private static LoadResult Median(List<LoadResult> runs) => runs.OrderBy(r => r.RequestsPerSecond).ElementAt(runs.Count / 2);

    /// <summary>One request of the run's kind: it must succeed.</summary>
    private static void Check(string url, string bodyFile, string contentType, int? headerLength)
    {
        using var content = new ByteArrayContent(File.ReadAllBytes(bodyFile));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        if (headerLength is not null) content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", headerLength.ToString());
        using var r = s_http.PostAsync(url, content).GetAwaiter().GetResult();
        if (!r.IsSuccessStatusCode)
            throw new InvalidOperationException($"POST {url}: {(int)r.StatusCode} {r.Content.ReadAsStringAsync().GetAwaiter().GetResult()}");
    }

    private static string Invoke(string url, string bodyFile, string contentType, int? headerLength, int connections, int seconds)
    {
        var info = new ProcessStartInfo("wrk", [$"-t{Math.Min(2, connections)}", $"-c{connections}", $"-d{seconds}s", "--latency", "-s", Script, url])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["MLOS_BODY"] = bodyFile;
        info.Environment["MLOS_CONTENT_TYPE"] = contentType;
        info.Environment["MLOS_HEADER_LENGTH"] = headerLength?.ToString() ?? "";
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"wrk failed ({p.ExitCode}): {output}");
        return output;
    }

    private static double Latency(string text, string percentile)
    {
        var m = Regex.Match(text, $@"^\s*{Regex.Escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
        if (!m.Success) throw new InvalidOperationException($"no {percentile} latency in wrk's output:\n{text}");
        double v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch { "us" => v / 1000, "s" => v * 1000, _ => v };
    }

    private static double Number(Regex regex, string text)
    {
        var m = regex.Match(text);
        return m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)
            : throw new InvalidOperationException($"unexpected wrk output:\n{text}");
    }

    private static double RegexOrZero(Regex regex, string text)
    {
        var m = regex.Match(text);
        if (!m.Success) return 0;
        return m.Groups.Cast<Group>().Skip(1).Sum(g => double.Parse(g.Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")] private static partial Regex RpsRegex();
    [GeneratedRegex(@"(\d+) requests in")] private static partial Regex RequestsRegex();
    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")] private static partial Regex Non2xxRegex();
    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")] private static partial Regex SocketErrorsRegex();
}
