namespace Mlos.Smi.Abi;

/// <summary>The <c>SMI_VERSION_*</c> macros: versions pack as (major &lt;&lt; 16) | (minor &lt;&lt; 8) | patch.</summary>
public static class SmiVersion
{
    public const uint Major = 1;
    public const uint Minor = 3;
    public const uint Patch = 0;
    public const uint Current = (Major << 16) | (Minor << 8) | Patch;

    /// <summary>Size of <c>smi_tensor_t::shape</c>.</summary>
    public const int MaxDims = 8;

    public static uint Make(uint major, uint minor, uint patch) => (major << 16) | (minor << 8) | patch;
    public static uint GetMajor(uint version) => (version >> 16) & 0xFFFF;
    public static uint GetMinor(uint version) => (version >> 8) & 0xFF;
    public static uint GetPatch(uint version) => version & 0xFF;
    public static string Format(uint version) => $"{GetMajor(version)}.{GetMinor(version)}.{GetPatch(version)}";
}
