using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.Python.Tests;

public class PythonConfigTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("test-config")]
    public void A_plain_label_or_nothing_means_the_guides_class(string? config)
    {
        var c = PythonConfig.Parse(config);
        Assert.Equal(("my_python_plugin", "MyPythonPlugin", null), (c.Module, c.Class, c.Path));
        Assert.Contains("libpython3.11.so.1.0", c.Libraries);
        Assert.False(c.FinalizeOnCleanup);
    }

    [Fact]
    public void Json_names_module_class_path_and_library()
    {
        var c = PythonConfig.Parse("""{"module":"pkg.plugin","class":"Model","path":"rel/dir","libpython":"libpython3.12.so.1.0","finalize_on_cleanup":true}""");
        Assert.Equal(("pkg.plugin", "Model"), (c.Module, c.Class));
        Assert.Equal(Path.GetFullPath("rel/dir"), c.Path);
        Assert.Equal(["libpython3.12.so.1.0"], c.Libraries);
        Assert.True(c.FinalizeOnCleanup);
    }

    [Theory]
    [InlineData("""{"module":"os; import x"}""", "\"module\" must be a Python name")]
    [InlineData("""{"module":"a..b"}""", "\"module\" must be a Python name")]
    [InlineData("""{"class":"pkg.Class"}""", "\"class\" is a name inside the module")]
    [InlineData("""{"class":"1abc"}""", "\"class\" must be a Python name")]
    [InlineData("""{"path":3}""", "\"path\" must be a string")]
    [InlineData("""{"finalize_on_cleanup":"yes"}""", "must be true or false")]
    [InlineData("""{"module":""", "not valid JSON")]
    public void Bad_configs_are_invalid_params_that_say_why(string config, string message)
    {
        var e = Assert.Throws<SmiException>(() => PythonConfig.Parse(config));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(message, e.Message);
    }
}
