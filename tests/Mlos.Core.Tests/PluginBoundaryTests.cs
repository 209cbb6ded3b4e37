using Mlos.Core.Plugins;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Tests;

/// <summary>
/// The checks of what a plugin answers sit above its boundary (<see cref="PluginBoundary"/>), so
/// every kind of boundary — in this process today, a plugin host tomorrow — is distrusted the
/// same way. A boundary that lies in every answer gets exactly the core's breach messages.
/// </summary>
public unsafe class PluginBoundaryTests
{
    /// <summary>Answers every entry wrongly; the message of the last failure is "it went wrong".</summary>
    private sealed class LyingBoundary : PluginBoundary
    {
        public override uint SmiVersion => Smi.Abi.SmiVersion.Current;
        public override string NativeId => "liar";
        public override SmiCapabilities Capabilities => SmiCapabilities.ThreadSafe | SmiCapabilities.TypedInfer;
        public override PluginEntries Entries => PluginEntries.LoadModel | PluginEntries.GetModelInfo | PluginEntries.GetModelIo | PluginEntries.Infer | PluginEntries.GetLastError;
        public bool Closed;

        public override (string? Name, string? Version, string? Frameworks) Describe() => ("Liar", "6.6.6", "lies");
        public override string? LastError() => "it went wrong";
        public override SmiStatus Initialize(byte* config) => (SmiStatus)42;
        public override SmiStatus Cleanup() => SmiStatus.Success;
        public override SmiStatus RegisterModel(SmiModelMetadata* metadata, nint* handle) { *handle = 7; return SmiStatus.Success; }
        public override SmiStatus UnregisterModel(nint handle) => SmiStatus.Success;
        public override SmiStatus LoadModel(nint handle, byte* path) => SmiStatus.Runtime;
        public override SmiStatus UnloadModel(nint handle) => SmiStatus.Success;
        public override SmiStatus AllocateResources(nint handle, SmiResourceReq* requirements, nuint count) => SmiStatus.Success;
        public override SmiStatus DeallocateResources(nint handle) => SmiStatus.Success;

        public override SmiStatus GetModelInfo(nint handle, byte* json, nuint* size)
        {
            *size += 10; // claims more than the buffer holds
            return SmiStatus.Success;
        }

        public override SmiStatus GetModelIo(nint handle, SmiTensorSpec* inputs, nuint* numInputs, SmiTensorSpec* outputs, nuint* numOutputs)
        {
            *numInputs = 5000;
            *numOutputs = 1;
            return SmiStatus.BufferTooSmall;
        }

        public override SmiStatus Inference(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize)
        {
            *outputSize += 1;
            return SmiStatus.Success;
        }

        public override SmiStatus Infer(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs)
        {
            outputs[0] = new SmiTensor { Name = null, Dtype = SmiDtype.Fp32, NDim = 1, ByteSize = 0 };
            *numOutputs = 1;
            return SmiStatus.Success;
        }

        public override SmiStatus InferWithDeadline(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline) => SmiStatus.NotSupported;
        public override SmiStatus InferSelected(nint handle, SmiTensor* inputs, nuint numInputs, byte** names, nuint numNames, SmiTensor* outputs, nuint* numOutputs, ulong deadline) => SmiStatus.NotSupported;
        public override void Close() => Closed = true;
    }

    private static Plugin Liar(LyingBoundary boundary) => new("liar", "liar.so", boundary);

    [Fact]
    public void What_the_boundary_says_of_the_plugin_is_what_the_core_reports()
    {
        var boundary = new LyingBoundary();
        var plugin = Liar(boundary);
        Assert.Equal(("Liar", "6.6.6", "lies", "liar"), (plugin.Name, plugin.Version, plugin.Frameworks, plugin.NativeId));
        Assert.True(plugin.HasTypedInfer);
        Assert.False(plugin.HasDeadlineInfer);
        Assert.Null(plugin.Gate); // thread-safe: no gate
        plugin.Close();
        Assert.True(boundary.Closed);
    }

    [Fact]
    public void A_status_outside_smi_and_the_plugins_own_message_make_the_failure()
    {
        var plugin = Liar(new LyingBoundary());
        var e = Assert.Throws<MlosException>(() => plugin.Initialize(null));
        Assert.Equal(SmiStatus.Runtime, e.Status);
        Assert.Equal("plugin 'liar' initialize failed with status 42, which is not an SMI status: it went wrong", e.Message);
        e = Assert.Throws<MlosException>(() => plugin.Load(7, null));
        Assert.Equal("plugin 'liar' load_model failed: SMI_ERROR_RUNTIME (-5): it went wrong", e.Message);
    }

    [Fact]
    public void Answers_that_break_the_contract_are_refused_above_the_boundary()
    {
        var plugin = Liar(new LyingBoundary());
        Assert.Equal("plugin 'liar' get_model_info broke the SMI contract: it reported 4106 bytes written into a buffer of 4096",
            Assert.Throws<MlosException>(() => plugin.ModelInfo(7)).Message);
        Assert.Equal("plugin 'liar' get_model_io broke the SMI contract: it reported 5000 inputs and 1 outputs; no model has more than 1024",
            Assert.Throws<MlosException>(() => plugin.ModelIo(7)).Message);

        Assert.Equal("plugin 'liar' inference broke the SMI contract: it reported 9 output bytes for a buffer of 8", Untyped(plugin).Message);
        Assert.Equal("plugin 'liar' infer broke the SMI contract: output 0 has a NULL name", Typed(plugin).Message);
    }

    private static MlosException Untyped(Plugin plugin)
    {
        byte* buffer = stackalloc byte[8];
        nuint size = 8;
        try { plugin.InferenceCall(7, buffer, 8, buffer, &size); }
        catch (MlosException e) { return e; }
        throw new InvalidOperationException("the breach was let through");
    }

    private static MlosException Typed(Plugin plugin)
    {
        SmiTensor* outputs = stackalloc SmiTensor[1];
        outputs[0] = default;
        nuint count = 1;
        try { plugin.InferCall(7, null, 0, outputs, &count, 0, Models.OutputSelection.All); }
        catch (MlosException e) { return e; }
        throw new InvalidOperationException("the breach was let through");
    }
}
