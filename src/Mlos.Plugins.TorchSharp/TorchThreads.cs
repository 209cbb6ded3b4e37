using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// libtorch's two process-wide pools, sized for a server. Intra-op (one op split over threads):
/// the cores, shared by every module; with dynamic batching on (the default where a model can
/// batch) one batch per model runs at a time and gets all of it. Inter-op (TorchScript's
/// <c>fork</c>, parallel graph branches): 1 unless asked, because concurrent requests already
/// keep the cores busy and a second pool of core-count threads would only compete with them.
/// libtorch takes the inter-op size once, before its pool starts: a later initialize keeps it.
/// </summary>
internal static class TorchThreads
{
    private static readonly Lock s_lock = new();
    private static bool s_interOpSet;

    /// <param name="intraOp">Intra-op threads; 0 = the cores.</param>
    /// <param name="interOp">Inter-op threads; 0 = 1.</param>
    public static void Apply(int intraOp, int interOp)
    {
        torch.set_num_threads(intraOp > 0 ? intraOp : Environment.ProcessorCount);
        lock (s_lock)
        {
            if (s_interOpSet) return;
            s_interOpSet = true;
            try { torch.set_num_interop_threads(interOp > 0 ? interOp : 1); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Its pool already runs (another libtorch user in this process): it keeps its size.
                Console.Error.WriteLine($"[mlos-torch] inter-op threads stay at {torch.get_num_interop_threads()}: {e.Message}");
            }
        }
    }
}
