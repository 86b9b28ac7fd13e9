"""``python -m mlip_transfer.data.surrogate``: build the surrogate default dataset."""

# Spawned workers re-import this file as __mp_main__: only the parent may build.
if __name__ == "__main__":
    from mlip_transfer.data.surrogate.cli import main

    main()
