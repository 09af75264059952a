using ClippyBot.Security;
using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.Backup;

/// <summary>The archive key: HKDF-SHA-256 of a configured secret (≥ 43 characters), from a file or <c>CLIPPYBOT_BACKUP_KEY</c>.</summary>
public static class ArchiveKey
{
    public static byte[] Load(string? keyFile)
    {
        string? secret;
        if (keyFile is not null)
        {
            if (!File.Exists(keyFile))
            {
                throw new BackupException($"Key file '{keyFile}' does not exist.");
            }
            secret = File.ReadAllText(keyFile).Trim();
        }
        else
        {
            secret = Environment.GetEnvironmentVariable(BackupCli.KeyVariable);
        }
        if (string.IsNullOrEmpty(secret))
        {
            throw new BackupException($"No key: pass --key-file FILE or set {BackupCli.KeyVariable}.");
        }
        if (secret.Length < 43)
        {
            throw new BackupException("The backup key must be a random secret of at least 43 characters (e.g. `openssl rand -base64 48`).");
        }
        return Derive(secret);
    }

    public static byte[] Derive(string secret) =>
        KeyDerivation.DeriveKey(secret, "clippybot-backup", "archive");
}
