using ClippyBot.PluginTool;

return PluginCli.Run(args, Console.Out, Console.Error, TimeProvider.System);
