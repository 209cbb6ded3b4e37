using System.Buffers.Binary;
using System.Text.Json;
using Mlos.Core;
using Mlos.Server;
using Mlos.Smi.Sdk;

namespace Mlos.Fuzz;

/// <summary>
/// The KServe v2 request reader, <see cref="KServeRequest.Parse"/>, on the body of a request.
/// Input: a 4-byte little-endian Inference-Header-Content-Length, then the body. A length past
/// the end of the body means "no such header" (the whole body is the JSON header): the server
/// refuses such lengths before it parses, so this spends those inputs on the other case it has.
/// </summary>
internal static unsafe class KServeTarget
{
    /// <summary>As a server started without --allow-shared-memory: a region named in a request is refused.</summary>
    private static readonly SharedMemoryRegions s_regions = new(allowed: false);

    public static void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < sizeof(uint)) return;
        uint declared = BinaryPrimitives.ReadUInt32LittleEndian(input);
        var body = input[sizeof(uint)..];
        int headerLength = declared <= (uint)body.Length ? (int)declared : body.Length;
        var scratch = KServeScratch.Rent();
        try
        {
            fixed (byte* pointer = body)
            {
                var request = KServeRequest.Parse(body, headerLength, pointer, scratch, s_regions);
                // What the core checks next, before any plugin sees the tensors: it reads them too.
                Mlos.Core.Models.InferInputs.Check(scratch.Inputs, (nuint)request.InputCount);
            }
        }
        // What the server answers with a 4xx (Responses.Guard): a malformed body is the client's
        // fault. Anything else escaping is a bug, and afl-fuzz records it as a crash.
        catch (Exception e) when (e is MlosException or SmiException or JsonException) { }
        finally
        {
            scratch.ReleaseOutputs();
            KServeScratch.Return(scratch);
        }
    }
}
