"""A command that is not found is explained: where it was looked for and what provides it."""

from __future__ import annotations

from gateway_core.launch.commands import MissingCommand
from gateway_core.launch.missing import describe_missing, provider_of


def test_a_missing_npx_names_the_folders_searched_and_nodejs():
    message = describe_missing(MissingCommand("npx", ("/usr/bin", "/bin")))

    assert message == (
        "command 'npx' not found (searched: /usr/bin, /bin). "
        "Node.js provides npx; install it or set the full path in the server's command"
    )


def test_a_missing_command_nobody_is_known_to_provide_still_says_what_to_do():
    message = describe_missing(MissingCommand("my-server", ("/usr/bin",)))

    assert message == (
        "command 'my-server' not found (searched: /usr/bin). Install it or set the full path in the server's command"
    )


def test_a_file_without_execute_permission_is_named_with_the_fix():
    message = describe_missing(MissingCommand("serve", ("/opt/bin",), ("/opt/bin/serve",)))

    assert "/opt/bin/serve has no execute permission" in message


def test_a_missing_path_says_which_file_is_not_there():
    message = describe_missing(MissingCommand("./serve", ("/work/serve",), bare_name=False))

    assert message == "command './serve' not found: there is no file /work/serve"


def test_providers_are_known_by_file_name_whatever_the_folder_or_windows_extension():
    assert provider_of("uvx") == "uv"
    assert provider_of(r"C:\nodejs\NPX.CMD") == "Node.js"
    assert provider_of("/usr/bin/python3") == "Python"
    assert provider_of("docker") == "Docker"
    assert provider_of("something-else") is None
