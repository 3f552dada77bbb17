; Toolgate's Windows installer (NSIS 3, Modern UI 2).
;
; Installs the PyInstaller one-folder bundle (toolgate.exe, toolgate-shim.exe, _internal\) for the
; current user into %LOCALAPPDATA%\Programs\Toolgate: no administrator rights, no UAC prompt.
;
;   makensis /NOCD /DDIST_DIR=dist\toolgate-0.1.0-windows-amd64 /DVERSION=0.1.0 ^
;            /DOUT_FILE=dist\Toolgate-0.1.0-windows-setup.exe installers\windows\toolgate.nsi
;
; (run from the repository root; /NOCD keeps makensis there, so the relative paths mean what they
; say; without it makensis works from this script's folder and relative paths miss.)
;
; Compile-time defines:
;   DIST_DIR    (required) the PyInstaller folder holding toolgate.exe and toolgate-shim.exe
;   VERSION     (required) x.y.z, e.g. 0.1.0 (a suffix such as 0.1.0rc1 is shown but left out of
;               the four-number file version Windows wants)
;   OUT_FILE    the installer to write (default: dist\Toolgate-VERSION-windows-setup.exe in the repository)
;   ICON        the .ico for the installer and the shortcut (default: resources\icons\rendered\toolgate.ico)
;   COMPRESSOR  lzma (default, smallest), zlib (fastest) or bzip2
;
; What it writes, all per user (HKCU), so the uninstaller can remove all of it again:
;   $INSTDIR\...                                       the bundle, toolgate.ico and uninstall.exe
;   Start menu\Programs\Toolgate.lnk                   starts toolgate.exe
;   HKCU\Software\Toolgate  ShimPath                   $INSTDIR\toolgate-shim.exe: a stable path to
;                                                      put in IDE configs; also InstallLocation, Version
;   HKCU\...\CurrentVersion\Run  Toolgate              only with "Start Toolgate when I sign in": the
;                                                      same value app/autostart.py writes
;   HKCU\...\CurrentVersion\Uninstall\Toolgate         the "Installed apps" entry
;
; Command line: /S installs silently (with the default components), /D=C:\path sets the folder
; (must be last, no quotes). The uninstaller takes /S too. Exit code 2 means cancelled or refused.
;
; Not done: toolgate-shim is not put on PATH. NSIS has no built-in way to edit PATH without
; truncating long values; IDE configs get the shim's full path instead (the Agents panel copies it,
; and HKCU\Software\Toolgate\ShimPath holds it for scripts). Nor is there an all-users install:
; Toolgate keeps its config, tokens and start-at-sign-in per user anyway, and an elevated installer
; would write HKCU for the administrator who approved the prompt, not for the person signed in.

Unicode true
ManifestDPIAware true

; --- Compile-time inputs ---------------------------------------------------------------------------

!ifndef DIST_DIR
  !error "Pass the PyInstaller folder: makensis /DDIST_DIR=<folder with toolgate.exe> ..."
!endif
!ifndef VERSION
  !error "Pass the version: makensis /DVERSION=x.y.z ..."
!endif
!if ! /FileExists "${DIST_DIR}\toolgate.exe"
  !error "DIST_DIR (${DIST_DIR}) has no toolgate.exe: is it the PyInstaller folder for Windows?"
!endif
!if ! /FileExists "${DIST_DIR}\toolgate-shim.exe"
  !error "DIST_DIR (${DIST_DIR}) has no toolgate-shim.exe: is it the PyInstaller folder for Windows?"
!endif
!ifndef OUT_FILE
  !define OUT_FILE "${__FILEDIR__}\..\..\dist\Toolgate-${VERSION}-windows-setup.exe"
!endif
!ifndef ICON
  !define ICON "${__FILEDIR__}\..\..\resources\icons\rendered\toolgate.ico"
!endif
!if ! /FileExists "${ICON}"
  !error "No icon at ${ICON}: pass /DICON=<path to toolgate.ico>"
!endif
!ifndef COMPRESSOR
  !define COMPRESSOR lzma
!endif

; Windows wants a four-number file version: take x.y.z from VERSION and drop any suffix after z
; (0.1.0rc1 -> 0.1.0.0). !searchparse leaves a part undefined when it is missing, hence the defaults.
!searchparse /noerrors "${VERSION}" "" V_MAJOR_RAW "." V_MINOR_RAW "." V_PATCH_RAW
!define /ifndef V_MAJOR_RAW 0
!define /ifndef V_MINOR_RAW 0
!define /ifndef V_PATCH_RAW 0
; /math reads the leading digits only: "0rc1" -> 0, "0+unknown" -> 0.
!define /math V_MAJOR ${V_MAJOR_RAW} + 0
!define /math V_MINOR ${V_MINOR_RAW} + 0
!define /math V_PATCH ${V_PATCH_RAW} + 0

; --- Names used below ------------------------------------------------------------------------------

!define APP_NAME "Toolgate"
!define PUBLISHER "Toolgate"
!define APP_EXE "toolgate.exe"
!define SHIM_EXE "toolgate-shim.exe"
!define UNINSTALLER "uninstall.exe"
!define SHORTCUT "$SMPROGRAMS\${APP_NAME}.lnk"
; Toolgate's own key: ShimPath for IDE configs and scripts, InstallLocation for the next upgrade.
!define APP_KEY "Software\Toolgate"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Toolgate"
; Start at sign-in, exactly as app/autostart.py does it: value "Toolgate" (APP_NAME) under this key,
; holding the app's command plus --background (BACKGROUND_FLAG: start in the tray, no window).
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define RUN_VALUE "Toolgate"
!define RUN_COMMAND '"$INSTDIR\${APP_EXE}" --background'

; --- Installer attributes --------------------------------------------------------------------------

Name "${APP_NAME}"
OutFile "${OUT_FILE}"
; Per user: no elevation. $LOCALAPPDATA\Programs is where Windows puts per-user programs.
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
; An earlier install's folder wins over the default, so an upgrade lands on top of it.
InstallDirRegKey HKCU "${APP_KEY}" "InstallLocation"
SetCompressor /SOLID ${COMPRESSOR}
BrandingText "${APP_NAME} ${VERSION}"
ShowInstDetails hide
ShowUninstDetails hide

VIProductVersion "${V_MAJOR}.${V_MINOR}.${V_PATCH}.0"
VIFileVersion "${V_MAJOR}.${V_MINOR}.${V_PATCH}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${APP_NAME} ${VERSION} Setup"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}"

!include MUI2.nsh
!include LogicLib.nsh
!include FileFunc.nsh
!include Sections.nsh

; --- Pages -----------------------------------------------------------------------------------------

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC

!define MUI_WELCOMEPAGE_TEXT "This will install ${APP_NAME} ${VERSION}, one local gateway in front of \
  every MCP server you use, for your Windows account only (no administrator rights needed).$\r$\n$\r$\n\
  If ${APP_NAME} is running, quit it from its tray icon first.$\r$\n$\r$\nClick Next to continue."
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!define MUI_PAGE_CUSTOMFUNCTION_LEAVE CheckInstallDir
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME} now"
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; --- Shared checks (installer and uninstaller each need their own copy, hence the macro) ----------

; Whether toolgate.exe or toolgate-shim.exe in $INSTDIR is running. Windows does not let anyone open
; a running program's .exe for writing, so a failed open means "in use"; no plugin is needed and only
; this folder's copies count (a Toolgate run from elsewhere does not block the install).
; Asks to Retry or Cancel; on Cancel (and in silent mode) it sets error level 2 and leaves the
; error flag set for the caller to stop on.
!macro DEFINE_CHECK_NOT_RUNNING PREFIX
  Function ${PREFIX}CheckNotRunning
    Push $0
    Push $1
    retry:
      StrCpy $1 ""
      ${If} ${FileExists} "$INSTDIR\${APP_EXE}"
        ClearErrors
        FileOpen $0 "$INSTDIR\${APP_EXE}" a
        ${If} ${Errors}
          StrCpy $1 "${APP_NAME} is running.$\r$\n$\r$\nQuit it from its tray icon (right-click, Quit), then click Retry."
        ${Else}
          FileClose $0
        ${EndIf}
      ${EndIf}
      ${If} $1 == ""
      ${AndIf} ${FileExists} "$INSTDIR\${SHIM_EXE}"
        ClearErrors
        FileOpen $0 "$INSTDIR\${SHIM_EXE}" a
        ${If} ${Errors}
          StrCpy $1 "An IDE or AI agent is using ${SHIM_EXE}.$\r$\n$\r$\nClose it (or turn off its Toolgate MCP server), then click Retry."
        ${Else}
          FileClose $0
        ${EndIf}
      ${EndIf}
      ClearErrors
      ${If} $1 != ""
        DetailPrint "$1"
        MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION "$1" /SD IDCANCEL IDRETRY retry
        SetErrorLevel 2
        SetErrors
      ${EndIf}
    Pop $1
    Pop $0
  FunctionEnd
!macroend
!insertmacro DEFINE_CHECK_NOT_RUNNING ""
!insertmacro DEFINE_CHECK_NOT_RUNNING "un."

; Deletes the Run value only when it starts this install's toolgate.exe: app/autostart.py writes the
; command with subprocess.list2cmdline, which quotes the path only when it has spaces, so both forms
; count. A Run value for a Toolgate installed elsewhere (or run from source) is left alone.
!macro DEFINE_REMOVE_OWN_RUN_VALUE PREFIX
  Function ${PREFIX}RemoveOwnRunValue
    Push $0
    ClearErrors
    ReadRegStr $0 HKCU "${RUN_KEY}" "${RUN_VALUE}"
    ${IfNot} ${Errors}
      ${If} $0 == '"$INSTDIR\${APP_EXE}" --background'
      ${OrIf} $0 == '$INSTDIR\${APP_EXE} --background'
        DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"
      ${EndIf}
    ${EndIf}
    Pop $0
  FunctionEnd
!macroend
!insertmacro DEFINE_REMOVE_OWN_RUN_VALUE ""
!insertmacro DEFINE_REMOVE_OWN_RUN_VALUE "un."

; Sets the error flag when $INSTDIR holds files but is not a Toolgate folder. The uninstaller deletes
; $INSTDIR with everything in it, so Toolgate must never share a folder with anything else.
Function CheckDirIsOurs
  Push $0
  Push $1
  ClearErrors
  ${If} ${FileExists} "$INSTDIR\${APP_EXE}"
    Goto done ; an earlier Toolgate: an upgrade
  ${EndIf}
  FindFirst $0 $1 "$INSTDIR\*"
  ${DoWhile} $1 != ""
    ${If} $1 != "."
    ${AndIf} $1 != ".."
      FindClose $0
      SetErrors
      Goto done
    ${EndIf}
    FindNext $0 $1
  ${Loop}
  FindClose $0
  ClearErrors
  done:
  Pop $1
  Pop $0
FunctionEnd

; Leaving the Directory page: refuse a folder with other things in it, and a running Toolgate.
Function CheckInstallDir
  Call CheckDirIsOurs
  ${If} ${Errors}
    MessageBox MB_OK|MB_ICONEXCLAMATION "$INSTDIR is not empty.$\r$\n$\r$\nChoose an empty folder, or the folder of an earlier ${APP_NAME}: uninstalling removes the whole folder."
    Abort ; stays on the page
  ${EndIf}
  Call CheckNotRunning
  ${If} ${Errors}
    Abort
  ${EndIf}
FunctionEnd

; --- Installer -------------------------------------------------------------------------------------

Section "${APP_NAME}" SEC_APP
  SectionIn RO

  ; Checked again here for silent installs, which skip the Directory page.
  Call CheckDirIsOurs
  ${If} ${Errors}
    SetErrorLevel 2
    MessageBox MB_OK|MB_ICONSTOP "$INSTDIR is not empty and is not a ${APP_NAME} folder: choose another." /SD IDOK
    Abort
  ${EndIf}
  Call CheckNotRunning
  ${If} ${Errors}
    Abort
  ${EndIf}

  ; An upgrade replaces the bundle's libraries wholesale: files an older version had and this one
  ; does not must not linger in _internal (Python would still find them).
  RMDir /r "$INSTDIR\_internal"

  SetOutPath "$INSTDIR"
  File /r "${DIST_DIR}\*"
  File "/oname=toolgate.ico" "${ICON}"
  WriteUninstaller "$INSTDIR\${UNINSTALLER}"

  ; The shortcut goes straight into Start menu\Programs (no folder of one item).
  CreateShortCut "${SHORTCUT}" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\toolgate.ico" 0

  ; The shim's stable path, for IDE configs and anything else that needs to find it.
  WriteRegStr HKCU "${APP_KEY}" "ShimPath" "$INSTDIR\${SHIM_EXE}"
  WriteRegStr HKCU "${APP_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${APP_KEY}" "Version" "${VERSION}"

  ; The "Installed apps" / "Programs and Features" entry.
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\toolgate.ico"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\${UNINSTALLER}"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\${UNINSTALLER}" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2 ; $0 = size in KiB, as EstimatedSize wants it
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" $0
SectionEnd

Section "Start ${APP_NAME} when I sign in" SEC_AUTOSTART
  ; The same value the app's own "Start at login" setting writes, so the two stay in step.
  WriteRegStr HKCU "${RUN_KEY}" "${RUN_VALUE}" '${RUN_COMMAND}'
SectionEnd

; Unticking the box on an upgrade turns start-at-sign-in off again.
Section "-ApplyAutostartChoice"
  ${IfNot} ${SectionIsSelected} ${SEC_AUTOSTART}
    Call RemoveOwnRunValue
  ${EndIf}
SectionEnd

Function .onInit
  SetShellVarContext current
  ; On an upgrade the box starts as it is now (set from the app's Settings, perhaps), so clicking
  ; through does not change it; a first install starts with it ticked.
  ClearErrors
  ReadRegStr $0 HKCU "${APP_KEY}" "InstallLocation"
  ${IfNot} ${Errors}
    ClearErrors
    ReadRegStr $0 HKCU "${RUN_KEY}" "${RUN_VALUE}"
    ${If} ${Errors}
      !insertmacro UnselectSection ${SEC_AUTOSTART}
    ${EndIf}
  ${EndIf}
FunctionEnd

; --- Uninstaller -----------------------------------------------------------------------------------

Function un.onInit
  SetShellVarContext current
  Call un.CheckNotRunning
  ${If} ${Errors}
    Quit
  ${EndIf}
FunctionEnd

Section "Uninstall"
  Call un.RemoveOwnRunValue
  Delete "${SHORTCUT}"

  ; Only remove Toolgate's key when it describes this install (another copy may have written it since).
  ReadRegStr $0 HKCU "${APP_KEY}" "InstallLocation"
  ${If} $0 == "$INSTDIR"
    DeleteRegValue HKCU "${APP_KEY}" "ShimPath"
    DeleteRegValue HKCU "${APP_KEY}" "InstallLocation"
    DeleteRegValue HKCU "${APP_KEY}" "Version"
    DeleteRegKey /ifempty HKCU "${APP_KEY}"
  ${EndIf}
  DeleteRegKey HKCU "${UNINSTALL_KEY}"

  ; The installer only allows an empty folder or a Toolgate one, so the folder is all Toolgate's.
  ; The person's config, audit log and secrets live elsewhere (%LOCALAPPDATA%\Toolgate and the
  ; Windows Credential Manager) and are kept.
  RMDir /r "$INSTDIR"
SectionEnd
