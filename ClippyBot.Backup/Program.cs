using ClippyBot.Backup;

return await BackupCli.RunAsync(args, Console.Out, Console.Error, CancellationToken.None);
