using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Smi.Tests;

public unsafe class SmiOutputsTests
{
    private static readonly byte* Name = Utf8.Intern("y");

    [Fact]
    public void Caller_buffer_is_written_in_place_without_release()
    {
        var buffer = new float[4];
        fixed (float* b = buffer)
        {
            var slots = new SmiTensor[1];
            slots[0].Data = b;
            slots[0].ByteSize = 16;
            fixed (SmiTensor* s = slots)
            {
                var outputs = new SmiOutputs(s, 1);
                var span = outputs.Add(Name, SmiDtype.Fp32, [2, 2], 16);
                span[0] = 0x3f; // touch the caller's memory
                Assert.Equal(1, outputs.Count);
            }
            Assert.True(slots[0].Data == b);
            Assert.True(slots[0].Release == null);
            Assert.Equal(2u, slots[0].NDim);
            Assert.Equal(2, slots[0].Shape[1]);
            Assert.NotEqual(0f, buffer[0]);
        }
    }

    [Fact]
    public void Too_small_caller_buffer_reports_the_size_needed()
    {
        var slots = new SmiTensor[1];
        byte one = 0;
        slots[0].Data = &one;
        slots[0].ByteSize = 1;
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 1);
            var e = Catch(ref outputs, static (ref SmiOutputs o) => o.Add(Name, SmiDtype.Fp32, [4], 16));
            Assert.Equal(SmiStatus.BufferTooSmall, e.Status);
        }
        Assert.Equal((nuint)16, slots[0].ByteSize);
    }

    [Fact]
    public void Empty_slot_gets_plugin_memory_that_release_frees()
    {
        var slots = new SmiTensor[1];
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 1);
            outputs.Add(Name, SmiDtype.Int64, [3], 24).Fill(7);
            Assert.True(s->Release != null);
            Assert.Equal(7, ((byte*)s->Data)[23]);
            s->Release(s);
            Assert.True(s->Data == null);
            Assert.True(s->Release == null);
        }
    }

    [Fact]
    public void Reserve_refuses_before_allocating_and_release_on_failure_frees()
    {
        var slots = new SmiTensor[2];
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 2);
            outputs.Add(Name, SmiDtype.Int8, [1], 1);
            var e = Catch(ref outputs, static (ref SmiOutputs o) => o.Reserve(3));
            Assert.Contains("the model has 3 outputs, capacity is 2", e.Message);
            outputs.ReleaseAllocated();
            Assert.True(s->Data == null);
        }
    }

    [Fact]
    public void Rank_above_max_dims_is_refused()
    {
        var slots = new SmiTensor[1];
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 1);
            var e = Catch(ref outputs, static (ref SmiOutputs o) => o.Add(Name, SmiDtype.Int8, new long[9], 1));
            Assert.Equal(SmiStatus.NotSupported, e.Status);
        }
    }

    private delegate void OutputsAction(ref SmiOutputs outputs);

    private static SmiException Catch(ref SmiOutputs outputs, OutputsAction action)
    {
        try { action(ref outputs); }
        catch (SmiException e) { return e; }
        throw new Xunit.Sdk.XunitException("expected an SmiException");
    }

    [Fact]
    public void A_selection_keeps_only_the_named_outputs_and_releases_the_rest()
    {
        var slots = new SmiTensor[3];
        byte** selected = stackalloc byte*[1];
        selected[0] = Utf8.Intern("b");
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 3, selected, 1);
            Assert.False(outputs.WantsAll);
            Assert.True(outputs.Wants(Utf8.Intern("b")));
            Assert.False(outputs.Wants(Utf8.Intern("a")));
            // A plugin that ignores Wants writes everything: the SDK keeps only "b".
            foreach (var n in (string[])["a", "b", "c"]) outputs.Add(Utf8.Intern(n), SmiDtype.Fp32, [1], 4);
            outputs.KeepSelected();
            Assert.Equal(1, outputs.Count);
            Assert.Equal("b", Utf8.Read(s[0].Name));
            Assert.True(s[0].Release != null);
            Assert.True(s[1].Release == null && s[1].Data == null); // released, not left for the caller
            Assert.True(s[2].Release == null && s[2].Data == null);
            s[0].Release(&s[0]);
        }
    }

    [Fact]
    public void A_selected_name_the_plugin_did_not_write_is_invalid()
    {
        var slots = new SmiTensor[2];
        byte** selected = stackalloc byte*[1];
        selected[0] = Utf8.Intern("missing");
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 2, selected, 1);
            outputs.Add(Utf8.Intern("a"), SmiDtype.Fp32, [1], 4);
            SmiException? e = null;
            try { outputs.KeepSelected(); }
            catch (SmiException x) { e = x; }
            Assert.NotNull(e);
            Assert.Equal(SmiStatus.InvalidParam, e!.Status);
            Assert.Contains("no output 'missing'", e.Message);
            Assert.Equal(0, outputs.Count);
        }
    }
}
