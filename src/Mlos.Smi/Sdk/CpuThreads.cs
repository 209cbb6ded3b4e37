namespace Mlos.Smi.Sdk;

/// <summary>
/// The one rule for thread counts a model asks for (resource requests, thread options): at most
/// the cores this process may run on. More never runs faster, and a request of 2^64 threads must
/// not make a framework start thousands of them (20 s for one allocate_resources call).
/// </summary>
public static class CpuThreads
{
    /// <summary><paramref name="requested"/> within [1, cores]; 0 stays 0, "the framework's default".</summary>
    public static int Fit(ulong requested) =>
        requested == 0 ? 0 : (int)Math.Min(requested, (ulong)Environment.ProcessorCount);
}
