# Test packages for flox-runc, built with no network by tests/nix/build-cache.sh.
#
# Every derivation is a plain `builtins.derivation` whose builder is the static
# busybox from Debian's busybox-static, added to the (private) store with
# `nix-store --add` and passed in as `bbStatic` (a store path string).  Nothing
# here depends on nixpkgs.  Output paths are input-addressed, so they depend
# only on this file and on the exact busybox binary.
#
#   nix-instantiate --store DIR --arg bbStatic '"/nix/store/...-busybox-static"' \
#                   --argstr bbVersion 1.35.0 tests/nix/packages.nix
{ bbStatic, bbVersion ? "1.35.0", system ? "x86_64-linux" }:

let
  bbDir = builtins.storePath bbStatic;

  # A derivation built by `busybox sh -euc SCRIPT`.  busybox picks the applet
  # from argv[1] because argv[0] (the builder's base name) is `busybox`, and its
  # shell runs applets (mkdir, cp, ln ...) without a PATH.
  mk = { name, script, outputs ? [ "out" ], env ? { } }:
    builtins.derivation ({
      inherit name system outputs;
      builder = "${bbDir}/bin/busybox";
      args = [ "sh" "-euc" script ];
      # Marks the store paths of this fixture set (it shows in `nix show-derivation`).
      floxRuncTestFixture = "1";
    } // env);

  busybox = mk {
    name = "busybox-${bbVersion}";
    script = ''
      mkdir -p $out/bin
      cp ${bbDir}/bin/busybox $out/bin/busybox
      chmod 0555 $out/bin/busybox
      for a in $($out/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox $out/bin/$a
      done
    '';
  };

  # An executable script in $out/bin whose #! line is the store busybox: a real
  # reference, so the package's closure is {itself, busybox}.
  script = path: body: ''
    mkdir -p $(dirname ${path})
    printf '#!%s/bin/sh\n%s\n' "$busybox" ${body} > ${path}
    chmod 0555 ${path}
  '';

  withBusybox = { inherit busybox; };

  # Propagation, as Flox's builder.pl follows it: propagator propagates
  # propuser (nix-support/propagated-user-env-packages: run and dev) and
  # propdep (nix-support/propagated-build-inputs: dev only); propuser in turn
  # propagates propdeep (recursion).  propuser also has a bin/propagator,
  # which the explicitly installed propagator's shadows.  The nix-support
  # files make them references, so they are in propagator's closure.
  propdeep = mk {
    name = "propdeep-1.0";
    env = withBusybox;
    script = script "$out/bin/propdeep" "'echo propdeep'";
  };
  propuser = mk {
    name = "propuser-1.0";
    env = withBusybox // { inherit propdeep; };
    script = script "$out/bin/propuser" "'echo propuser'"
      + script "$out/bin/propagator" "'echo propuser-shadowed'" + ''
      mkdir -p $out/nix-support
      printf '%s' "$propdeep" > $out/nix-support/propagated-user-env-packages
    '';
  };
  propdep = mk {
    name = "propdep-1.0";
    env = withBusybox;
    script = script "$out/bin/propdep" "'echo propdep'" + ''
      mkdir -p $out/include
      echo '#define PROPDEP 1' > $out/include/propdep.h
    '';
  };
  propagator = mk {
    name = "propagator-1.0";
    env = withBusybox // { inherit propuser propdep; };
    script = script "$out/bin/propagator" "'echo propagator'" + ''
      mkdir -p $out/nix-support
      printf '%s' "$propuser" > $out/nix-support/propagated-user-env-packages
      printf '%s\n' "$propdep" > $out/nix-support/propagated-build-inputs
    '';
  };

in
{
  inherit busybox propdeep propuser propdep propagator;

  hello = mk {
    name = "hello-2.12.1";
    env = withBusybox;
    script = script "$out/bin/hello" "'echo \"Hello, world!\"'";
  };

  # Two outputs: `out` (program and doc) and `man`.
  greet = mk {
    name = "greet-1.0";
    outputs = [ "out" "man" ];
    env = withBusybox;
    script = script "$out/bin/greet" "'echo \"\${GREETING:-Hello from greet}\"'" + ''
      mkdir -p $out/share/doc/greet
      echo "greet: prints \$GREETING (default: Hello from greet)." > $out/share/doc/greet/README
      mkdir -p $man/share/man/man1
      printf '.TH GREET 1\n.SH NAME\ngreet \\- print a greeting\n.SH ENVIRONMENT\nGREETING\n' \
        > $man/share/man/man1/greet.1
    '';
  };

  # Same file bin/conflict, different contents: equal priorities conflict.
  conflict-a = mk {
    name = "conflict-a-1.0";
    env = withBusybox;
    script = script "$out/bin/conflict" "'echo conflict-a'";
  };
  conflict-b = mk {
    name = "conflict-b-1.0";
    env = withBusybox;
    script = script "$out/bin/conflict" "'echo conflict-b'";
  };

  # Headers and a pkg-config file (dev-mode CPATH / PKG_CONFIG_PATH), and a
  # `stubs` output that Flox leaves out of manifest-v1 environments.
  devtool = mk {
    name = "devtool-0.3";
    outputs = [ "out" "stubs" ];
    env = withBusybox;
    script = script "$out/bin/devtool" "'echo devtool 0.3'" + ''
      mkdir -p $out/include $out/lib/pkgconfig
      printf '#ifndef DEVTOOL_H\n#define DEVTOOL_H\n#define DEVTOOL_VERSION "0.3"\nint devtool_answer(void);\n#endif\n' \
        > $out/include/devtool.h
      printf 'prefix=%s\nincludedir=${"$"}{prefix}/include\n\nName: devtool\nDescription: flox-runc test package\nVersion: 0.3\nCflags: -I${"$"}{includedir}\n' \
        "$out" > $out/lib/pkgconfig/devtool.pc
    '' + script "$stubs/bin/devtool-stub" "'echo devtool-stub: must not be in a v1 environment'" + ''
      mkdir -p $stubs/lib/stubs
      echo stub > $stubs/lib/stubs/libdevtool.stub
    '';
  };

  # What Flox's activation looks for in an environment (lib/activate.c
  # frc_env_features_probe): bin/java, bin/python3 -> python3.11, bin/pip3,
  # bin/cmake, share/jupyter, rustc-std-workspace-std (dev-mode profile.d),
  # a CA bundle and a locale archive (every activation); and plugin profile.d
  # scripts, which dev mode sources after [vars]: 0900_langtools.sh (reads
  # LT_VAR, overrides LT_OVERRIDE), 0501_rust.sh (the interpreter's name: not
  # sourced), notes.txt (not *.sh: not sourced).
  langtools = mk {
    name = "langtools-1.0";
    env = withBusybox;
    script = script "$out/bin/java" "'echo java'" + script "$out/bin/python3.11" "'echo python'"
      + script "$out/bin/pip3" "'echo pip'" + script "$out/bin/cmake" "'echo cmake'" + ''
      ln -s python3.11 $out/bin/python3
      mkdir -p $out/share/jupyter/kernels $out/rustc-std-workspace-std $out/lib/locale \
        $out/etc/ssl/certs $out/lib/python3.11/site-packages
      echo locales > $out/lib/locale/locale-archive
      echo certificates > $out/etc/ssl/certs/ca-bundle.crt
      mkdir -p $out/etc/profile.d
      printf 'export LANGTOOLS_PLUGIN="saw:''${LT_VAR:-none}"\nexport LT_OVERRIDE=plugin\n' \
        > $out/etc/profile.d/0900_langtools.sh
      echo 'export LANGTOOLS_SHADOWED=1' > $out/etc/profile.d/0501_rust.sh
      echo 'export LANGTOOLS_TXT=1' > $out/etc/profile.d/notes.txt
    '';
  };
}
