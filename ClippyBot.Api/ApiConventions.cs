using System.Text.Json.Serialization;

namespace ClippyBot.Api;

/// <summary>Wire conventions of the whole public API.</summary>
public static class ApiConventions
{
    public static IHostApplicationBuilder AddApiConventions(this IHostApplicationBuilder builder)
    {
        // Roles and other enums travel as their names ("admin"), never as numbers that change meaning when reordered.
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(System.Text.Json.JsonNamingPolicy.CamelCase)));
        return builder;
    }
}
