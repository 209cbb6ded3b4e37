using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Mlos.Smi.Abi;

// The one boundary file for smi_spec.h: blittable mirrors of every SMI struct, field for field
// and in the same order. c-tests/abi_layout_test.c checks each offset and size against
// SmiLayout.Describe(), so a change here that the header does not make fails the build.

/// <summary>Mirror of <c>smi_model_metadata_t</c>. Every pointer is borrowed for one call.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiModelMetadata
{
    public byte* Name;
    public byte* Framework;
    public byte* Version;
    public byte* Path;
    public byte* Config;
}

/// <summary>Mirror of <c>smi_resource_req_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SmiResourceReq
{
    public SmiResourceType Type;
    public int DeviceId;
    public ulong Amount;
}

/// <summary>Mirror of <c>smi_plugin_interface_t</c>: the frozen SMI 1.0 table.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiPluginInterface
{
    public delegate* unmanaged<byte*, SmiStatus> Initialize;
    public delegate* unmanaged<SmiStatus> Cleanup;
    public delegate* unmanaged<SmiModelMetadata*, nint*, SmiStatus> RegisterModel;
    public delegate* unmanaged<nint, SmiStatus> UnregisterModel;
    public delegate* unmanaged<nint, byte*, SmiStatus> LoadModel;
    public delegate* unmanaged<nint, SmiStatus> UnloadModel;
    public delegate* unmanaged<nint, void*, nuint, void*, nuint*, SmiStatus> Inference;
    public delegate* unmanaged<nint, void**, nuint*, nuint, void**, nuint*, SmiStatus> BatchInference;
    public delegate* unmanaged<nint, SmiResourceReq*, nuint, SmiStatus> AllocateResources;
    public delegate* unmanaged<nint, SmiStatus> DeallocateResources;
    public delegate* unmanaged<nint, byte*, nuint*, SmiStatus> GetModelInfo;
    public delegate* unmanaged<byte*> GetPluginName;
    public delegate* unmanaged<byte*> GetPluginVersion;
    public delegate* unmanaged<byte*> GetSupportedFrameworks;
    public delegate* unmanaged<uint> GetSmiVersion;
}

/// <summary>Mirror of <c>smi_tensor_spec_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiTensorSpec
{
    public byte* Name;
    public SmiDtype Dtype;
    public uint NDim;
    public SmiShape Shape;

    /// <summary>The dimensions in use (-1: dynamic).</summary>
    [System.Diagnostics.CodeAnalysis.UnscopedRef]
    public readonly ReadOnlySpan<long> Dims => ((ReadOnlySpan<long>)Shape)[..(int)Math.Min(NDim, (uint)SmiVersion.MaxDims)];
}

/// <summary>The inline <c>int64_t shape[SMI_MAX_DIMS]</c> array.</summary>
[InlineArray(SmiVersion.MaxDims)]
public struct SmiShape
{
    private long _dim0;
}

/// <summary>Mirror of <c>smi_tensor_t</c>. See smi_spec.h for the output ownership rule.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiTensor
{
    public byte* Name;
    public SmiDtype Dtype;
    public uint NDim;
    public SmiShape Shape;
    public void* Data;
    public nuint ByteSize;
    public SmiMemoryType MemoryType;
    public int DeviceId;
    public delegate* unmanaged<SmiTensor*, void> Release;
    public void* ReleaseContext;

    /// <summary>The dimensions in use.</summary>
    [System.Diagnostics.CodeAnalysis.UnscopedRef]
    public readonly ReadOnlySpan<long> Dims => ((ReadOnlySpan<long>)Shape)[..(int)Math.Min(NDim, (uint)SmiVersion.MaxDims)];
}

/// <summary>Mirror of <c>smi_plugin_interface_1_1_t</c>: the SMI 1.1 block.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiPluginInterface11
{
    public SmiCapabilities Capabilities;
    public delegate* unmanaged<nint, SmiTensorSpec*, nuint*, SmiTensorSpec*, nuint*, SmiStatus> GetModelIo;
    public delegate* unmanaged<nint, SmiTensor*, nuint, SmiTensor*, nuint*, SmiStatus> Infer;
    public delegate* unmanaged<byte*> GetLastError;
}

/// <summary>Mirror of <c>smi_plugin_interface_1_2_t</c>: the SMI 1.2 block.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiPluginInterface12
{
    /// <summary>Typed infer with an absolute CLOCK_MONOTONIC deadline in ns (0: none).</summary>
    public delegate* unmanaged<nint, SmiTensor*, nuint, SmiTensor*, nuint*, ulong, SmiStatus> InferWithDeadline;
}

/// <summary>Mirror of <c>smi_plugin_interface_1_3_t</c>: the SMI 1.3 block.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiPluginInterface13
{
    /// <summary>Typed infer of the named outputs only (none named: all), with a deadline as <see cref="SmiPluginInterface12.InferWithDeadline"/>.</summary>
    public delegate* unmanaged<nint, SmiTensor*, nuint, byte**, nuint, SmiTensor*, nuint*, ulong, SmiStatus> InferSelected;
}

/// <summary>Mirror of <c>smi_plugin_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmiPlugin
{
    public SmiPluginInterface Interface;
    public byte* PluginId;
    public uint SmiVersion;
    public void* PrivateData;
    // ---- End of SMI 1.0: do not modify above ----
    public SmiPluginInterface11 V11;
    // ---- End of SMI 1.1: do not modify above ----
    public SmiPluginInterface12 V12;
    // ---- End of SMI 1.2: do not modify above ----
    public SmiPluginInterface13 V13;
    // ---- End of SMI 1.3: do not modify above ----
}
