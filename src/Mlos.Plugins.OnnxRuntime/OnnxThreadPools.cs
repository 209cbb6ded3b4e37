using Microsoft.ML.OnnxRuntime;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// ONNX Runtime's process-wide thread pools, shared by every session that does not ask for its
/// own. A session's own intra-op pool is sized to the machine and spins between ops: with many
/// models that is a thread per core per model (1000 models, 1000+ threads), and under concurrent
/// requests the pools' spinning workers fight the server's threads and each other for the
/// cores. One pool, not spinning, serves every session; with dynamic batching on (the default
/// where a model can batch) one batch runs per model at a time and gets the whole pool.
///
/// Its size is half the cores (at least 1, the calling thread alone): the other half serves the
/// requests themselves (HTTP, JSON) and other models' batches. Measured on 2 cores, 256-wide MLP,
/// KServe JSON, median of 3 alternating runs against one thread per session: a pool of 2 gave
/// 0.79× at 1 connection, 0.92× at 8 and 0.95× at 64; spinning workers gave 0.5× at 8 and 0.7× at 64.
///
/// The pools belong to ONNX Runtime's environment, which exists once per process and is made
/// here, at the plugin's first initialize. If something else in the process made it first
/// (without global pools), sessions keep per-session pools: <see cref="Shared"/> says which.
/// </summary>
internal static class OnnxThreadPools
{
    private static readonly Lock s_lock = new();
    private static bool s_done, s_shared;

    /// <summary>Whether sessions can run on the shared pools (DisablePerSessionThreads).</summary>
    public static bool Shared
    {
        get { lock (s_lock) return s_shared; }
    }

    /// <summary>
    /// After a session on the shared pools failed to load: the same session with pools of its
    /// own. If it loads, the environment has no global pools (another library in the process made
    /// it first): <see cref="Shared"/> turns false for good, with one log line. Null if it fails too
    /// (the model itself is the problem, and the first error is the one to report).
    /// </summary>
    public static InferenceSession? TryOwnPoolsInstead(OnnxConfig config, string name, string path)
    {
        try
        {
            using var options = (config with { OwnThreadPools = true }).CreateSessionOptions(name);
            var session = new InferenceSession(path, options);
            lock (s_lock)
            {
                if (s_shared) Console.Error.WriteLine("[mlos-onnx] ONNX Runtime's environment has no global thread pools (made elsewhere in this process): sessions get pools of their own");
                s_shared = false;
            }
            return session;
        }
        catch (OnnxRuntimeException) { return null; }
    }

    /// <summary>Intra-op threads of the shared pool (0 until made); the caller's thread counts as one.</summary>
    public static int IntraOpThreads { get; private set; }

    /// <summary>
    /// Makes the environment with the shared pools, once: <paramref name="intraOp"/> threads (0 =
    /// half the cores, at least 1), inter-op 1 (sessions run their graphs sequentially), spinning as given.
    /// Later calls (a second initialize) change nothing: the pools live as long as the process.
    /// </summary>
    public static void Ensure(int intraOp, int interOp, bool spin)
    {
        lock (s_lock)
        {
            if (s_done) return;
            if (OrtEnv.IsCreated)
            {
                s_done = true; // made by someone else (without our pools): sessions keep their own
                return;
            }
            int intra = intraOp > 0 ? intraOp : Math.Max(1, Environment.ProcessorCount / 2);
            using var threading = new OrtThreadingOptions
            {
                GlobalIntraOpNumThreads = intra,
                GlobalInterOpNumThreads = interOp > 0 ? interOp : 1,
                GlobalSpinControl = spin,
            };
            var options = new EnvironmentCreationOptions { threadOptions = threading, logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING };
            OrtEnv.CreateInstanceWithOptions(ref options); // a failure leaves s_done false: the next initialize tries again
            IntraOpThreads = intra;
            s_shared = true;
            s_done = true;
        }
    }
}
