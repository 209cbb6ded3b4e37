using System.Text;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Smi.Tests;

public class SdkErrorTests
{
    [Theory]
    [InlineData(typeof(ArgumentNullException), SmiStatus.InvalidParam)]
    [InlineData(typeof(OutOfMemoryException), SmiStatus.OutOfMemory)]
    [InlineData(typeof(KeyNotFoundException), SmiStatus.NotFound)]
    [InlineData(typeof(FileNotFoundException), SmiStatus.NotFound)]
    [InlineData(typeof(NotSupportedException), SmiStatus.NotSupported)]
    [InlineData(typeof(InvalidOperationException), SmiStatus.InvalidState)]
    [InlineData(typeof(DivideByZeroException), SmiStatus.Runtime)]
    public void Exceptions_map_to_statuses(Type type, SmiStatus expected)
    {
        var e = (Exception)Activator.CreateInstance(type)!;
        Assert.Equal(expected, SmiException.StatusOf(e));
    }

    [Fact]
    public void SmiException_keeps_its_status_and_size()
    {
        var e = SmiException.BufferTooSmall(100, 4);
        Assert.Equal(SmiStatus.BufferTooSmall, SmiException.StatusOf(e));
        Assert.Equal(100ul, e.RequiredSize);
        Assert.Contains("100 bytes needed, 4 given", e.Message);
    }

    [Fact]
    public void Last_error_is_per_thread_and_names_the_exception()
    {
        Assert.Equal(SmiStatus.Runtime, LastError.From(new DivideByZeroException("boom")));
        Assert.Equal("DivideByZeroException: boom", LastError.Message);
        string? other = "unset";
        var t = new Thread(() => other = LastError.Message);
        t.Start();
        t.Join();
        Assert.Null(other);
        Assert.Equal("DivideByZeroException: boom", LastError.Message);
    }

    [Fact]
    public void Last_error_grows_for_long_messages_and_keeps_utf8()
    {
        var text = new string('é', 1000);
        LastError.Set(text);
        Assert.Equal(text, LastError.Message);
        LastError.Set("short");
        Assert.Equal("short", LastError.Message);
    }

    [Fact]
    public unsafe void Text_out_follows_the_size_protocol()
    {
        byte* buffer = stackalloc byte[8];
        nuint size = 8;
        SmiException? e = null;
        try { Utf8.WriteTo("0123456789", buffer, &size); }
        catch (SmiException x) { e = x; }
        Assert.Equal(SmiStatus.BufferTooSmall, e?.Status);
        Assert.Equal((nuint)11, size);
        size = 8;
        Utf8.WriteTo("abc", buffer, &size);
        Assert.Equal((nuint)4, size);
        Assert.Equal("abc", Encoding.UTF8.GetString(buffer, 3));
        Assert.Equal(0, buffer[3]);
    }
}
