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
            w.WriteString("status", "loaded");
            w.WriteString("path", p.Path);
            w.WriteString("smi_version", SmiVersion.Format(p.SmiVersion));
            w.WriteString("frameworks", p.Frameworks);
            w.WriteStartArray("capabilities");
            foreach (var flag in Enum.GetValues<SmiCapabilities>())
                if (flag != SmiCapabilities.None && p.Capabilities.HasFlag(flag)) w.WriteStringValue(CapabilityName(flag));
            w.WriteEndArray();
            w.WriteNumber("models", models.Count(m => m.Plugin == p));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("total", core.Plugins.Count);
    });

    /// <summary><c>{"status":"success","models":[…],"total":N}</c></summary>
    public static byte[] Models(MlosCore core) => Write(w =>
    {
        var models = core.Models;
        w.WriteString("status", "success");
        w.WriteStartArray("models");
        foreach (var m in models)
        {
            w.WriteStartObject();
            WriteModelFields(w, m);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("total", models.Count);
    });

    /// <summary>One model: registry fields, typed I/O specs when the plugin has them, and the plugin's own info.</summary>
    public static unsafe byte[] ModelInfo(Model m) => Write(w =>
    {
        WriteModelFields(w, m);
        if (m.Plugin.ModelIo(m.Handle) is { } io)
        {
            WriteSpecs(w, "inputs", io.Inputs);
            WriteSpecs(w, "outputs", io.Outputs);
        }
        if (m.Plugin.ModelInfo(m.Handle) is { } info)
        {
            w.WritePropertyName("plugin_info");
            try
            {
                using var doc = JsonDocument.Parse(info);
                doc.RootElement.WriteTo(w);
            }
            catch (JsonException) { w.WriteStringValue(info); } // a plugin may answer plain text
        }
    });

    private static string CapabilityName(SmiCapabilities flag) => flag switch
    {
        SmiCapabilities.ThreadSafe => "thread_safe",
        SmiCapabilities.Batching => "batching",
        SmiCapabilities.Gpu => "gpu",
        SmiCapabilities.TypedInfer => "typed_infer",
        _ => flag.ToString(),
    };

    private static void WriteModelFields(Utf8JsonWriter w, Model m)
    {
        w.WriteString("id", m.Id);
        w.WriteString("name", m.Id);
        w.WriteString("plugin_id", m.Plugin.Id);
        w.WriteString("status", m.State.ToString().ToLowerInvariant());
        w.WriteString("framework", m.Framework ?? m.Plugin.Frameworks.Split(',')[0]);
        w.WriteString("path", m.Path);
        w.WriteString("version", m.Version);
    }

    private static unsafe void WriteSpecs(Utf8JsonWriter w, string name, SmiTensorSpec[] specs)
    {
        w.WriteStartArray(name);
        foreach (var s in specs)
        {
            w.WriteStartObject();
            w.WriteString("name", Utf8.Read(s.Name));
            w.WriteString("datatype", SmiDtypes.Name(s.Dtype));
            w.WriteStartArray("shape");
            for (int i = 0; i < (int)Math.Min(s.NDim, (uint)SmiVersion.MaxDims); i++) w.WriteNumberValue(s.Shape[i]);
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
