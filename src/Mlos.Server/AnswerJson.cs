using System.Text.Encodings.Web;
using System.Text.Json;

namespace Mlos.Server;

/// <summary>How every answer's JSON is written.</summary>
internal static class AnswerJson
{
    /// <summary>
    /// Answers are read by people in curl as much as by programs: escape only what JSON requires,
    /// not <c>'</c> or <c>&lt;</c> (they are never embedded in HTML).
    /// </summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
