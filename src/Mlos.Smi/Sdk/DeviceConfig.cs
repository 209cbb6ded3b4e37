namespace Mlos.Smi.Sdk;

/// <summary>
/// The device options every framework plugin takes, in one place so that they read, default and
/// mean the same everywhere: <c>{"device":"cpu"|"cuda"|"cuda:N","allow_cpu_fallback":bool}</c>.
/// A plugin's config record derives from it and adds its framework's own keys.
/// </summary>
public abstract record DeviceConfig
{
    /// <summary>"cpu" or "cuda:N" ("cuda" is read as "cuda:0").</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Whether a CUDA device that cannot be used means the CPU (logged) rather than an error.</summary>
    public bool AllowCpuFallback { get; init; }

    /// <summary>The CUDA device ordinal, or null for the CPU.</summary>
    public int? CudaDevice => Device == "cpu" ? null : int.Parse(Device.AsSpan("cuda:".Length));

    /// <summary>
    /// <see cref="PluginOptions.Parse"/> with "device" and "allow_cpu_fallback" read here and every
    /// other key left to <paramref name="apply"/>.
    /// </summary>
    public static T Parse<T>(string? config, string framework, T basis, Func<T, PluginOption, T> apply) where T : DeviceConfig =>
        PluginOptions.Parse(config, framework, basis, (c, o) => o.Name switch
        {
            // A record's copy is of its runtime type: the derived options survive the base's `with`.
            "device" => (T)((DeviceConfig)c with { Device = o.Device() }),
            "allow_cpu_fallback" => (T)((DeviceConfig)c with { AllowCpuFallback = o.Bool() }),
            _ => apply(c, o),
        });
}
