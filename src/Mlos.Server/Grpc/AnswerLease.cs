namespace Mlos.Server.Grpc.Protocol;

/// <summary>
/// The memory behind a ModelInferResponse's raw_output_contents: the request's scratch and the
/// outputs it holds, which the ByteStrings wrap instead of copying. It is given back once the
/// message has been serialized (<see cref="InferenceServiceMethods"/>), or at the latest when the
/// call ends (a client gone before the answer was written).
/// </summary>
internal sealed class AnswerLease(KServeScratch scratch) : IDisposable
{
    private KServeScratch? _scratch = scratch;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _scratch, null) is not { } s) return; // serialized, then the call ended: once only
        s.ReleaseOutputs();
        KServeScratch.Return(s);
    }
}

/// <summary>The lease of the outputs this answer's raw contents point into, if they are not copies.</summary>
public sealed partial class ModelInferResponse
{
    internal AnswerLease? Lease { get; set; }
}
