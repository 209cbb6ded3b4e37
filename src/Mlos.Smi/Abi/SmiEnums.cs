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
}
