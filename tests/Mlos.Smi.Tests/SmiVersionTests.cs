using Mlos.Smi.Abi;

namespace Mlos.Smi.Tests;

public class SmiVersionTests
{
    [Fact]
    public void Packs_as_major_minor_patch_bytes()
    {
        Assert.Equal(0x010300u, SmiVersion.Current);
        Assert.Equal(0x020304u, SmiVersion.Make(2, 3, 4));
        Assert.Equal(2u, SmiVersion.GetMajor(0x020304));
        Assert.Equal(3u, SmiVersion.GetMinor(0x020304));
        Assert.Equal(4u, SmiVersion.GetPatch(0x020304));
        Assert.Equal("2.3.4", SmiVersion.Format(0x020304));
    }

    [Fact]
    public void Status_codes_match_the_guide()
    {
        Assert.Equal(0, (int)SmiStatus.Success);
        Assert.Equal(-1, (int)SmiStatus.InvalidParam);
        Assert.Equal(-2, (int)SmiStatus.OutOfMemory);
        Assert.Equal(-3, (int)SmiStatus.NotFound);
        Assert.Equal(-5, (int)SmiStatus.Runtime);
    }

    [Fact]
    public void Layout_lists_every_struct_with_a_size_that_matches_sizeof()
    {
        var lines = SmiLayout.Describe().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var sizes = lines.Where(l => !l.Split(' ')[0].Contains('.')).ToDictionary(l => l.Split(' ')[0], l => int.Parse(l.Split(' ')[1]));
        unsafe
        {
            Assert.Equal(sizeof(SmiPlugin), sizes["smi_plugin_t"]);
            Assert.Equal(sizeof(SmiTensor), sizes["smi_tensor_t"]);
            Assert.Equal(15 * 8, sizes["smi_plugin_interface_t"]);
        }
        // The 1.0 block is frozen: the 1.1 block starts right after private_data.
        Assert.Contains("smi_plugin_t.v1_1 144", lines);
        Assert.Contains("smi_tensor_t.shape 16", lines);
    }
}
