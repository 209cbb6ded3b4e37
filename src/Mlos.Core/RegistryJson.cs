using System.Buffers;
using System.Text.Json;
using Mlos.Core.Models;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core;

/// <summary>JSON views of the registry, as UTF-8: the shapes MLOS clients know (see design.md §4).</summary>
public static class RegistryJson
{
    /// <summary><c>{"status":"success","plugins":[…],"total":N}</c></summary>
    public static byte[] Plugins(MlosCore core) => Write(w =>
    {
        var models = core.Models;
        w.WriteString("status", "success");
        w.WriteStartArray("plugins");
        foreach (var p in core.Plugins)
        {
            w.WriteStartObject();
            w.WriteString("id", p.Id);
            w.WriteString("name", p.Name);
            w.WriteString("version", p.Version);
            // "loaded": opened and listed; "initialized": its framework is up (see Plugin.IsInitialized).
            w.WriteString("status", p.IsInitialized ? "initialized" : "loaded");
            w.WriteBoolean("initialized", p.IsInitialized);
            w.WriteString("path", p.Path);
            w.WriteString("smi_version", SmiVersion.Format(p.SmiVersion));
            w.WriteString("frameworks", p.Frameworks);
            w.WriteStartArray("capabilities");
            foreach (var flag in Enum.GetValues<SmiCapabilities>())
                if (flag != SmiCapabilities.None && p.Capabilities.HasFlag(flag)) w.WriteStringValue(CapabilityName(flag));
            w.WriteEndArray();
            w.WriteNumber("models", models.Count(m => m.Plugin == p));
            w.WriteString("isolation", Isolation.IsolationOptions.Name(p.Isolation));
            w.WriteBoolean("alive", p.IsAlive);
            if (p.Host is { } host)
            {
                w.WriteNumber("pid", host.Pid);
                w.WriteString("host_state", host.State);
                w.WriteNumber("restarts", host.Restarts);
                w.WriteNumber("crashes", host.Crashes);
                if (host.LastFailure is { } failure)
                {
                    w.WriteString("last_failure", failure);
                    w.WriteString("last_failure_at", host.LastFailureAt!.Value.ToString("O"));
                }
                w.WriteStartArray("pids");
                foreach (var h in p.Hosts!) w.WriteNumberValue(h.Pid);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("total", core.Plugins.Count);
    });

    /// <summary>
    /// The statistics extension's answer, <c>{"model_stats":[{"name","version","last_inference",
    /// "inference_count","execution_count","inference_stats":{"success","fail","queue",
    /// "compute_input","compute_infer","compute_output"},"batch_stats":[…]}]}</c>, each duration a
    /// <c>{"count","ns"}</c> pair (Triton's field names; counts and times as <see cref="ModelStatistics"/> defines them).
    /// </summary>
    public static byte[] Statistics(IEnumerable<Model> models) => Write(w =>
    {
        w.WriteStartArray("model_stats");
        foreach (var m in models)
        {
            var s = m.Statistics.Read();
            w.WriteStartObject();
            w.WriteString("name", m.Id);
            w.WriteString("version", m.ServedVersion);
            w.WriteNumber("last_inference", s.LastInferenceMs);
            w.WriteNumber("inference_count", s.InferenceCount);
            w.WriteNumber("execution_count", s.ExecutionCount);
            w.WriteStartObject("inference_stats");
            Duration(w, "success", s.Success);
            Duration(w, "fail", s.Fail);
            Duration(w, "queue", s.Queue);
            Duration(w, "compute_input", s.ComputeInput);
            Duration(w, "compute_infer", s.ComputeInfer);
            Duration(w, "compute_output", s.ComputeOutput);
            w.WriteEndObject();
            w.WriteStartArray("batch_stats");
            foreach (var b in s.Batches)
            {
                w.WriteStartObject();
                w.WriteNumber("batch_size", b.BatchSize);
                Duration(w, "compute_input", b.ComputeInput);
                Duration(w, "compute_infer", b.ComputeInfer);
                Duration(w, "compute_output", b.ComputeOutput);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    private static void Duration(Utf8JsonWriter w, string name, ModelStatistics.Duration d)
    {
        w.WriteStartObject(name);
        w.WriteNumber("count", d.Count);
        w.WriteNumber("ns", d.Nanoseconds);
        w.WriteEndObject();
    }

    /// <summary><c>{"status":"success","models":[…],"total":N}</c></summary>
    public static byte[] Models(MlosCore core) => Write(w =>
    {
        var models = core.Models;
        w.WriteString("status", "success");
        w.WriteStartArray("models");
        foreach (var m in models)
        {
            w.WriteStartObject();
            WriteModelFields(w, m, m.State);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("total", models.Count);
    });

    /// <summary>
    /// One model: registry fields, typed I/O specs when the plugin has them, and the plugin's own
    /// info. It says what it can: a plugin that cannot answer one part (a model not loaded yet, a
    /// broken answer) leaves that part out, with the reason under <c>io_error</c> / <c>info_error</c>.
    /// Refused from inside a plugin call, like every call that runs plugin code (see PluginCalls).
    /// </summary>
    /// <param name="versions">The model's registered versions, listed under <c>versions</c> (null: its own only).</param>
    public static byte[] ModelInfo(Model m, ModelVersions? versions = null)
    {
        var d = ModelDescription.Of(m);
        var state = d.State;
        return Write(w =>
        {
            WriteModelFields(w, m, state);
            // The Open Inference Protocol's model metadata: versions and platform.
            w.WriteStartArray("versions");
            foreach (var v in versions?.All.Reverse() ?? [m]) w.WriteStringValue(v.ServedVersion); // lowest first, as Triton lists them
            w.WriteEndArray();
            w.WriteString("platform", ModelDescription.Platform(m));
            w.WriteNumber("instances", m.Instances);
            if (d.Inputs is not null) WriteSpecs(w, "inputs", d.Inputs);
            if (d.Outputs is not null) WriteSpecs(w, "outputs", d.Outputs);
            if (d.IoError is not null) w.WriteString("io_error", d.IoError);
            WriteBatching(w, m);
            if (d.Info is { } info)
            {
                w.WritePropertyName("plugin_info");
                try
                {
                    using var doc = JsonDocument.Parse(info);
                    doc.RootElement.WriteTo(w);
                }
                catch (JsonException) { w.WriteStringValue(info); } // a plugin may answer plain text
            }
            if (d.InfoError is not null) w.WriteString("info_error", d.InfoError);
        });
    }

    private static string CapabilityName(SmiCapabilities flag) => flag switch
    {
        SmiCapabilities.ThreadSafe => "thread_safe",
        SmiCapabilities.Batching => "batching",
        SmiCapabilities.Gpu => "gpu",
        SmiCapabilities.TypedInfer => "typed_infer",
        SmiCapabilities.AnyInputs => "any_inputs",
        _ => flag.ToString(),
    };

    private static void WriteModelFields(Utf8JsonWriter w, Model m, ModelState state)
    {
        w.WriteString("id", m.Id);
        w.WriteString("name", m.Id);
        w.WriteString("plugin_id", m.Plugin.Id);
        w.WriteString("status", state.ToString().ToLowerInvariant());
        w.WriteString("framework", m.Framework ?? m.Plugin.Frameworks.Split(',')[0]);
        w.WriteString("path", m.Path);
        w.WriteString("version", m.Version);
    }

    /// <summary>
    /// <c>"dynamic_batching"</c>: the options in force, with <c>"default": true</c> when the core
    /// chose them, or false; <c>"dynamic_batching_off"</c> says why default batching stayed off.
    /// </summary>
    private static void WriteBatching(Utf8JsonWriter w, Model m)
    {
        // Running now, or asked for and not yet started (the model is not loaded): the options,
        // with "active" saying which. Off (turned off, or left to the default where the model
        // cannot batch): false, and why.
        var b = m.ActiveBatching ?? (m.WhyNotBatched is null && m.State != ModelState.Loaded ? m.Batching : null);
        if (b is not null)
        {
            w.WriteStartObject("dynamic_batching");
            w.WriteNumber("max_batch_size", b.MaxBatchSize);
            w.WriteNumber("max_queue_delay_us", b.MaxQueueDelayMicroseconds);
            w.WriteNumber("max_merge_bytes", b.MaxMergeBytes);
            if (b.PreferredBatchSizes.Length > 0)
            {
                w.WriteStartArray("preferred_batch_sizes");
                foreach (var size in b.PreferredBatchSizes) w.WriteNumberValue(size);
                w.WriteEndArray();
            }
            w.WriteBoolean("default", b.Automatic);
            w.WriteBoolean("active", m.ActiveBatching is not null);
            w.WriteEndObject();
            return;
        }
        w.WriteBoolean("dynamic_batching", false);
        if (m.WhyNotBatched is { } why) w.WriteString("dynamic_batching_off", why);
    }

    private static void WriteSpecs(Utf8JsonWriter w, string name, TensorDescription[] specs)
    {
        w.WriteStartArray(name);
        foreach (var s in specs)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteString("datatype", SmiDtypes.Name(s.Dtype));
            w.WriteStartArray("shape");
            foreach (var d in s.Shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
