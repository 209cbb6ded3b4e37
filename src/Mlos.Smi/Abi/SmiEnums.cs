namespace Mlos.Smi.Abi;

/// <summary>Mirror of <c>smi_status_t</c>.</summary>
public enum SmiStatus : int
{
    Success = 0,
    InvalidParam = -1,
    OutOfMemory = -2,
    NotFound = -3,
    NotSupported = -4,
    Runtime = -5,
    BufferTooSmall = -6,
    InvalidState = -7,
    AlreadyExists = -8,
    VersionMismatch = -9,
    Busy = -10,
    /// <summary>SMI 1.2: the call ran past its deadline and was stopped.</summary>
    Timeout = -11,
}

/// <summary>Names of <see cref="SmiStatus"/> values as smi_spec.h spells them, for messages.</summary>
public static class SmiStatusNames
{
    /// <summary>"SMI_ERROR_RUNTIME (-5)" for a status.</summary>
    public static string Of(SmiStatus status) => status switch
    {
        SmiStatus.Success => "SMI_SUCCESS (0)",
        SmiStatus.InvalidParam => "SMI_ERROR_INVALID_PARAM (-1)",
        SmiStatus.OutOfMemory => "SMI_ERROR_OUT_OF_MEMORY (-2)",
        SmiStatus.NotFound => "SMI_ERROR_NOT_FOUND (-3)",
        SmiStatus.NotSupported => "SMI_ERROR_NOT_SUPPORTED (-4)",
        SmiStatus.Runtime => "SMI_ERROR_RUNTIME (-5)",
        SmiStatus.BufferTooSmall => "SMI_ERROR_BUFFER_TOO_SMALL (-6)",
        SmiStatus.InvalidState => "SMI_ERROR_INVALID_STATE (-7)",
        SmiStatus.AlreadyExists => "SMI_ERROR_ALREADY_EXISTS (-8)",
        SmiStatus.VersionMismatch => "SMI_ERROR_VERSION_MISMATCH (-9)",
        SmiStatus.Busy => "SMI_ERROR_BUSY (-10)",
        SmiStatus.Timeout => "SMI_ERROR_TIMEOUT (-11)",
        _ => $"status {(int)status}",
    };
}

/// <summary>Mirror of <c>smi_dtype_t</c>.</summary>
public enum SmiDtype : int
{
    Invalid = 0,
    Bool = 1,
    UInt8 = 2,
    UInt16 = 3,
    UInt32 = 4,
    UInt64 = 5,
    Int8 = 6,
    Int16 = 7,
    Int32 = 8,
    Int64 = 9,
    Fp16 = 10,
    Fp32 = 11,
    Fp64 = 12,
    Bf16 = 13,
    Bytes = 14,
}

/// <summary>Mirror of <c>smi_memory_type_t</c>.</summary>
public enum SmiMemoryType : int
{
    Cpu = 0,
    CpuPinned = 1,
    Gpu = 2,
}

/// <summary>Mirror of <c>smi_resource_type_t</c>.</summary>
public enum SmiResourceType : int
{
    CpuThreads = 0,
    Memory = 1,
    Gpu = 2,
    GpuMemory = 3,
}

/// <summary>Mirror of the <c>SMI_CAP_*</c> flags.</summary>
[Flags]
public enum SmiCapabilities : ulong
{
    None = 0,
    ThreadSafe = 1UL << 0,
    Batching = 1UL << 1,
    Gpu = 1UL << 2,
    TypedInfer = 1UL << 3,
    /// <summary>SMI 1.3: models take any tensors; their specs are defaults, not rules the host enforces.</summary>
    AnyInputs = 1UL << 4,
}
