using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Smi.Tests;

/// <summary>
/// TensorMemory: small blocks from malloc, large ones mappings of their own on a 2 MiB boundary
/// advised as transparent huge pages, every block 64-byte aligned; a freed large one is kept a
/// second for reuse (at most TensorMemory.KeptBytesLimit), then given back.
/// </summary>
[CollectionDefinition(nameof(TensorMemoryTests), DisableParallelization = true)]
public sealed class TensorMemoryCollection;

[Collection(nameof(TensorMemoryTests))] // alone: the kept blocks are the process's
public unsafe class TensorMemoryTests
{
    private const nuint MiB = 1 << 20;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(2 * 1024 * 1024 - 65)]
    public void A_small_block_is_aligned_writable_and_not_a_mapping_of_its_own(int bytes)
    {
        byte* p = (byte*)TensorMemory.Alloc((nuint)bytes);
        try
        {
            Assert.True(p != null);
            Assert.Equal(0ul, (ulong)p % 64);
            new Span<byte>(p, bytes).Fill(0xAB);
            Assert.DoesNotContain("hg", ProcessMappings.Find(p)!.Value.Flags);
        }
        finally { TensorMemory.Free(p); }
    }

    [Theory]
    [InlineData(2 * 1024 * 1024 - 64)]
    [InlineData(4 * 1024 * 1024)]
    [InlineData(4 * 1024 * 1024 + 1)]
    public void A_large_block_is_a_huge_page_mapping_of_its_own_given_back_after_the_decay(int bytes)
    {
        byte* p = (byte*)TensorMemory.Alloc((nuint)bytes);
        var mapping = ProcessMappings.Find(p)!.Value;
        try
        {
            Assert.Equal(0ul, (ulong)(p - 64) % (2 * MiB)); // a huge page backs only whole aligned 2 MiB
            Assert.Equal(0ul, (ulong)p % 64);
            Assert.Contains("hg", mapping.Flags);
            Assert.True(mapping.End - (ulong)p >= (ulong)bytes);
            var span = new Span<byte>(p, bytes);
            span.Fill(0x5A);
            Assert.Equal(bytes, span.Count((byte)0x5A));
        }
        finally { TensorMemory.Free(p); }
        WaitUntilAllGivenBack();
        var after = ProcessMappings.Find(p);
        Assert.True(after is null || after.Value.Start != mapping.Start, "the mapping outlived the decay");
    }

    private static void WaitUntilAllGivenBack()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (TensorMemory.KeptBytes > 0 && clock.ElapsedMilliseconds < 10 * TensorMemory.DecayMs) Thread.Sleep(50);
        Assert.Equal((nuint)0, TensorMemory.KeptBytes);
    }

    [Fact]
    public void A_freed_large_block_is_reused_warm_by_the_next_of_about_its_size()
    {
        WaitUntilAllGivenBack();
        byte* p = (byte*)TensorMemory.Alloc(4 * MiB);
        new Span<byte>(p, (int)(4 * MiB)).Fill(7);
        TensorMemory.Free(p);
        Assert.True(TensorMemory.KeptBytes >= 4 * MiB);
        byte* q = (byte*)TensorMemory.Alloc(3 * MiB); // smaller, but not less than half: the same block
        Assert.True(p == q, "the kept block was not reused");
        Assert.Equal((nuint)0, TensorMemory.KeptBytes);
        Assert.Equal((byte)7, q[3 * MiB - 1]); // warm: what was written is still there (no fresh zeroed page)
        TensorMemory.Free(q);
        byte* small = (byte*)TensorMemory.Alloc(MiB + MiB / 2 + 100); // under half of it: a block of its own
        Assert.True(small != q);
        TensorMemory.Free(small);
        WaitUntilAllGivenBack();
    }

    [Fact]
    public void At_most_the_limit_is_kept_and_all_of_it_goes_back_after_the_decay()
    {
        WaitUntilAllGivenBack();
        var blocks = Enumerable.Range(0, 24).Select(_ => (nint)TensorMemory.Alloc(4 * MiB)).ToList();
        foreach (var b in blocks) TensorMemory.Free((void*)b);
        Assert.InRange(TensorMemory.KeptBytes, TensorMemory.KeptBytesLimit - 5 * MiB, TensorMemory.KeptBytesLimit);
        byte* huge = (byte*)TensorMemory.Alloc(TensorMemory.KeptBlockLimit + MiB); // larger than a kept block may be: never kept
        TensorMemory.Free(huge);
        Assert.True(TensorMemory.KeptBytes <= TensorMemory.KeptBytesLimit);
        WaitUntilAllGivenBack();
    }

    [Fact]
    public void Grow_keeps_what_was_written_across_the_change_of_kind()
    {
        byte* p = (byte*)TensorMemory.Alloc(1000);
        for (int i = 0; i < 1000; i++) p[i] = (byte)i;
        p = (byte*)TensorMemory.Grow(p, 1000, 3 * MiB);
        try
        {
            for (int i = 0; i < 1000; i++) Assert.Equal((byte)i, p[i]);
            Assert.Contains("hg", ProcessMappings.Find(p)!.Value.Flags);
            new Span<byte>(p + 1000, (int)(3 * MiB) - 1000).Clear();
        }
        finally { TensorMemory.Free(p); }
        Assert.Throws<ArgumentOutOfRangeException>(() => TensorMemory.Grow(null, 10, 5));
    }

    [Fact]
    public void A_mapping_grows_in_place_or_moves_with_its_contents_and_stays_advised()
    {
        byte* p = (byte*)TensorMemory.Alloc(3 * MiB);
        for (nuint i = 0; i < 3 * MiB; i += 4096) p[i] = (byte)(i >> 12);
        p = (byte*)TensorMemory.Grow(p, 3 * MiB, 9 * MiB);
        try
        {
            for (nuint i = 0; i < 3 * MiB; i += 4096) Assert.Equal((byte)(i >> 12), p[i]);
            var mapping = ProcessMappings.Find(p)!.Value;
            Assert.Contains("hg", mapping.Flags);
            Assert.True(mapping.End - (ulong)p >= 9 * MiB);
            new Span<byte>(p, (int)(9 * MiB)).Fill(1);
            Assert.True(p == TensorMemory.Grow(p, 4 * MiB, 8 * MiB)); // already large enough: the same block
        }
        finally { TensorMemory.Free(p); }
        WaitUntilAllGivenBack();
    }

    [Fact]
    public void A_request_buffer_grown_to_tensor_size_sits_on_huge_pages()
    {
        // What the server copies shared-memory inputs and REST bodies into.
        using var buffer = new NativeBuffer();
        buffer.Reserve(4 * MiB);
        buffer.Advance(4 * MiB);
        Assert.Contains("hg", ProcessMappings.Find(buffer.Pointer)!.Value.Flags);
    }

    [Fact]
    public void An_absurd_size_is_refused_as_out_of_memory()
    {
        Assert.Throws<OutOfMemoryException>(() => TensorMemory.Alloc(nuint.MaxValue - 10));
        Assert.Throws<OutOfMemoryException>(() => TensorMemory.Alloc(nuint.MaxValue / 2));
    }
}
