using System.Diagnostics;
using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Mlos.Server;

/// <summary>
/// Request counters and latency histograms per model and route, recorded with
/// System.Diagnostics.Metrics and served at <c>/metrics</c> by the OpenTelemetry Prometheus
/// exporter. The exporter's default buckets start at 5 ms; inference here takes microseconds, so
/// the histograms get explicit sub-millisecond buckets.
/// </summary>
internal static class ServerMetrics
{
    public const string MeterName = "Mlos.Server";

    private static readonly double[] SecondsBuckets =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly Meter s_meter = new(MeterName);
    private static readonly Counter<long> s_requests = s_meter.CreateCounter<long>("mlos_requests", description: "HTTP requests by route and outcome");
    private static readonly Counter<long> s_failures = s_meter.CreateCounter<long>("mlos_request_failures", description: "HTTP requests answered with an error");
    private static readonly Histogram<double> s_latency = s_meter.CreateHistogram<double>("mlos_request_duration", unit: "s", description: "HTTP request latency");
    private static readonly Histogram<double> s_inference = s_meter.CreateHistogram<double>("mlos_inference_duration", unit: "s", description: "Time inside the plugin per inference, by model");
    private static readonly Histogram<double> s_queue = s_meter.CreateHistogram<double>("mlos_queue_duration", unit: "s", description: "Time a request waited before its inference started, by model");
    private static readonly Histogram<long> s_batch = s_meter.CreateHistogram<long>("mlos_batch_size", description: "Requests in the dynamic batch each request ran in, by model");
    private static readonly long[] BatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];

    // Isolated plugins' host processes (#16), read from the core when /metrics is scraped.
    private static Mlos.Core.MlosCore? s_core;
    private static readonly ObservableCounter<long> s_hostCrashes = s_meter.CreateObservableCounter("mlos_plugin_host_crashes",
        () => Hosts(h => h.Crashes), description: "Deaths of an isolated plugin's host processes (signal, exit, call_timeout_ms)");
    private static readonly ObservableCounter<long> s_hostRestarts = s_meter.CreateObservableCounter("mlos_plugin_host_restarts",
        () => Hosts(h => h.Restarts), description: "Restarts of an isolated plugin's host processes");
    private static readonly ObservableGauge<long> s_pluginUp = s_meter.CreateObservableGauge("mlos_plugin_up",
        () => s_core?.Plugins.Select(p => new Measurement<long>(p.IsAlive ? 1 : 0, new KeyValuePair<string, object?>("plugin", p.Id))) ?? [],
        description: "1 while a plugin can take calls (an isolated one whose host is dead: 0)");

    /// <summary>Lets the plugin instruments read <paramref name="core"/>'s plugins.</summary>
    public static void Watch(Mlos.Core.MlosCore core) => s_core = core;

    private static IEnumerable<Measurement<long>> Hosts(Func<Mlos.Core.Isolation.HostState, int> value) =>
        s_core?.Plugins.Where(p => p.Host is not null)
            .Select(p => new Measurement<long>(value(p.Host!), new KeyValuePair<string, object?>("plugin", p.Id))) ?? [];

    public static void AddTo(IServiceCollection services) =>
        services.AddOpenTelemetry()
            // Without a resource the exporter labels everything unknown_service:<process name>.
            .ConfigureResource(r => r.AddService("mlos-core", serviceVersion: MlosRoutes.Version))
            .WithMetrics(m => m
            .AddMeter(MeterName)
            .AddView("mlos_request_duration", new ExplicitBucketHistogramConfiguration { Boundaries = SecondsBuckets })
            .AddView("mlos_inference_duration", new ExplicitBucketHistogramConfiguration { Boundaries = SecondsBuckets })
            .AddView("mlos_queue_duration", new ExplicitBucketHistogramConfiguration { Boundaries = SecondsBuckets })
            .AddView("mlos_batch_size", new ExplicitBucketHistogramConfiguration { Boundaries = BatchBuckets.Select(b => (double)b).ToArray() })
            .AddPrometheusExporter());

    // Status codes as boxed objects made once: a tag value is an object, and boxing per request allocates.
    private static readonly object[] s_codes = Enumerable.Range(0, 600).Select(c => (object)c).ToArray();

    public static void Request(string route, int status, double seconds)
    {
        var tags = new TagList { { "route", route }, { "code", (uint)status < 600 ? s_codes[status] : status } };
        s_requests.Add(1, in tags);
        if (status >= 400) s_failures.Add(1, in tags);
        s_latency.Record(seconds, new KeyValuePair<string, object?>("route", route));
    }

    public static void Inference(string model, double seconds, double queuedSeconds, int batchSize = 1)
    {
        var tag = new KeyValuePair<string, object?>("model", model);
        s_inference.Record(seconds, tag);
        s_queue.Record(queuedSeconds, tag);
        s_batch.Record(batchSize, tag);
    }
}
