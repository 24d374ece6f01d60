# Build the Windows bundle, dist\ostaf\ (one folder: run dist\ostaf\ostaf.exe, no console
# window), then prove it with --self-test.
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1 [-Archive] [-Python py]
#
# -Archive also writes dist\ostaf-VERSION-windows-x64.zip. The Python used needs
# requirements.txt and packaging\requirements-build.txt installed. The executable is not
# signed: see packaging\SIGNING.md.
param(
    [switch]$Archive,
    [string]$Python = "python"
)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

& $Python -m PyInstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\ostaf.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed (exit code $LASTEXITCODE)" }

# A windowed program has no console to print to: the self-test answers with its exit code.
$test = Start-Process -FilePath "dist\ostaf\ostaf.exe" -ArgumentList "--self-test" -Wait -PassThru
if ($test.ExitCode -ne 0) { throw "dist\ostaf\ostaf.exe --self-test failed (exit code $($test.ExitCode))" }
Write-Output "self-test passed"

if ($Archive) {
    $version = & $Python -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])"
    $zip = "dist\ostaf-$version-windows-x64.zip"
    Compress-Archive -Path "dist\ostaf" -DestinationPath $zip -Force
    Write-Output $zip
}
