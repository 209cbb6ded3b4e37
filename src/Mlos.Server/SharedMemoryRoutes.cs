using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// The Open Inference Protocol's system shared-memory extension over REST, as Triton serves it:
/// status, register and unregister of the regions in <see cref="SharedMemoryRegions"/>.
/// </summary>
internal static class SharedMemoryRoutes
{
    public static void Map(WebApplication app, ServerState state)
    {
        app.MapGet("/v2/systemsharedmemory/status", (HttpContext http) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, StatusJson(state.SharedMemory.Status(null)))));
        app.MapGet("/v2/systemsharedmemory/region/{name}/status", (HttpContext http, string name) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, StatusJson(state.SharedMemory.Status(PathIds.Segment(http, name, 3))))));
        app.MapPost("/v2/systemsharedmemory/region/{name}/register", (HttpContext http, string name) => Responses.Guard(http, state, async () =>
        {
            // Triton's clients send the register body without a content type: the caller rules apply, the content-type rule does not.
            AdminGate.RequireCaller(http, state);
            var id = PathIds.Segment(http, name, 3);
            var (key, offset, byteSize) = RegisterBody(await Responses.Body(http, state));
            Register(state, id, key, offset, byteSize);
            await Responses.Json(http, 200, static _ => { });
        }));
        app.MapPost("/v2/systemsharedmemory/unregister", (HttpContext http) => Responses.Guard(http, state, () =>
        {
            AdminGate.RequireCaller(http, state);
            Unregister(state, null);
            return Responses.Json(http, 200, static _ => { });
        }));
        app.MapPost("/v2/systemsharedmemory/region/{name}/unregister", (HttpContext http, string name) => Responses.Guard(http, state, () =>
        {
            AdminGate.RequireCaller(http, state);
            var id = PathIds.Segment(http, name, 3);
            Unregister(state, id);
            return Responses.Json(http, 200, static _ => { });
        }));
    }

    /// <summary>Registers a region and logs it: one implementation for REST and gRPC (callers check the caller rules first).</summary>
    public static void Register(ServerState state, string name, string key, ulong offset, ulong byteSize)
    {
        state.SharedMemory.Register(name, key, offset, byteSize);
        state.Log.Admin($"shared-memory region '{name}' registered: {byteSize} bytes at offset {offset} of '{key}'");
    }

    /// <summary>Unregisters one region, or every one (<paramref name="name"/> null or empty), and logs it.</summary>
    public static void Unregister(ServerState state, string? name)
    {
        state.SharedMemory.Unregister(name);
        state.Log.Admin(string.IsNullOrEmpty(name) ? "every shared-memory region unregistered" : $"shared-memory region '{name}' unregistered");
    }

    /// <summary>Triton's answer: an array of {"name","key","offset","byte_size"}.</summary>
    private static ReadOnlyMemory<byte> StatusJson(IReadOnlyList<SharedMemoryRegions.RegionStatus> regions)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, AnswerJson.WriterOptions))
        {
            w.WriteStartArray();
            foreach (var r in regions)
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteString("key", r.Key);
                w.WriteNumber("offset", r.Offset);
                w.WriteNumber("byte_size", r.ByteSize);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return buffer.WrittenMemory;
    }

    /// <summary>{"key": string, "offset": integer (default 0), "byte_size": integer}; other members are ignored, as Triton does.</summary>
    private static (string Key, ulong Offset, ulong ByteSize) RegisterBody(byte[] body)
    {
        using var doc = JsonDocument.Parse(body);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw Invalid("the register body must be a JSON object: {\"key\": \"/name\", \"offset\": 0, \"byte_size\": N}");
        string? key = null;
        ulong? offset = null, byteSize = null;
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            switch (p.Name)
            {
                case "key":
                    if (key is not null) throw Twice(p.Name);
                    key = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw Invalid("\"key\" must be a string (the shared-memory object's name, \"/name\")");
                    break;
                case "offset":
                    if (offset is not null) throw Twice(p.Name);
                    offset = Size(p);
                    break;
                case "byte_size":
                    if (byteSize is not null) throw Twice(p.Name);
                    byteSize = Size(p);
                    break;
            }
        }
        if (key is null) throw Invalid("the register body needs \"key\": the shared-memory object's name (\"/name\")");
        if (byteSize is null) throw Invalid("the register body needs \"byte_size\": the region's size in bytes");
        return (key, offset ?? 0, byteSize.Value);
    }

    private static ulong Size(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetUInt64(out var n) ? n
            : throw Invalid($"\"{p.Name}\" must be a non-negative integer below 2^64, not {Quote(p.Value.GetRawText())}");

    /// <summary>What the client sent, bounded: a member may hold megabytes.</summary>
    private static string Quote(string raw) => raw.Length <= 40 ? raw : string.Concat(raw.AsSpan(0, 40), "…");

    private static MlosException Twice(string member) => Invalid($"\"{member}\" is given twice in the register body");

    private static MlosException Invalid(string message) => new(SmiStatus.InvalidParam, message);
}
