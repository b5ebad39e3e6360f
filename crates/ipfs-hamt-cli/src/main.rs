//! `ipfs-hamt`: import a directory into a py-hamt compatible HAMT, read it back, change it,
//! compare and verify trees, on an embedded disk block store or a CAR file.
//!
//! Store options are global: they are accepted before or after the subcommand.
//!
//! Positional arguments with `--car`: the CID may be left out, and defaults to the CAR's single
//! root. `get [CID] KEY` and `export [CID] DIR` tell by count: two positionals are a CID and a
//! key (directory), one is the key (directory). `ls [CID] [PREFIX]` with one positional takes it
//! as the root if it parses as a CID, else as the prefix. Without `--car`, commands use the
//! disk store (`--store PATH`, else `$IPFS_HAMT_STORE`, else the XDG data directory) and the CID
//! is required.

// glibc's per-thread arenas fragment under the disk store's batch allocations: a 4 M-key bulk
// build peaked at 684 MiB with them, 443 MiB with mimalloc (BENCHMARKS.md, bulk import).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use ipfs_hamt::ByteRange;

mod bulk_import;
mod cmd;
mod import_cmd;
mod listing;
mod pins;
mod progress;
mod read_ahead;
mod serve;
mod sharded_cmd;
mod stores;
mod walk;

#[derive(Parser)]
#[command(
    name = "ipfs-hamt",
    version,
    about = "py-hamt compatible HAMTs on content-addressed stores",
    after_help = "Store options (--store, --car, --kubo, --gateway) may come before or after the subcommand.\n\
                  With --car, a CID argument may be omitted: it defaults to the CAR's single root."
)]
struct Cli {
    #[command(flatten)]
    store: StoreOpts,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where blocks are read and written.
#[derive(Args)]
pub struct StoreOpts {
    /// Embedded disk block store, a directory (default: $IPFS_HAMT_STORE, else
    /// $XDG_DATA_HOME/ipfs-hamt/store, else ~/.local/share/ipfs-hamt/store). A store file of
    /// the previous format (one redb file) is migrated on first use.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "car")]
    pub store: Option<PathBuf>,
    /// Do not pin the root a command writes (import, put, rm, pull, car import, convert,
    /// resize, graft, migrate; push: on the node). By default the disk store pins it, and a
    /// command that derives a new root from a pinned one moves the pin (see `pin`, `gc`).
    #[arg(long, global = true)]
    pub no_pin: bool,
    /// CAR file instead of the disk store: `import` writes it, other commands read it.
    #[arg(long, global = true, value_name = "FILE")]
    pub car: Option<PathBuf>,
    /// An IPFS node's Kubo RPC API (e.g. http://127.0.0.1:5001): commands read and write
    /// through the node instead of the disk store; `push`/`pull` copy between them.
    #[arg(long, global = true, value_name = "RPC_URL", env = "IPFS_HAMT_KUBO")]
    pub kubo: Option<String>,
    /// Gateway(s) for reads from the node, tried in order (repeat or comma-separate; default
    /// http://127.0.0.1:8080). Implies the node.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "IPFS_HAMT_GATEWAY",
        value_delimiter = ','
    )]
    pub gateway: Vec<String>,
    /// Bearer token for the node's RPC API and first gateway (never sent to other gateways).
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "IPFS_HAMT_KUBO_TOKEN",
        hide_env_values = true
    )]
    pub kubo_token: Option<String>,
    /// Extra header `NAME: VALUE` for the node's RPC API and first gateway (repeatable).
    #[arg(long, global = true, value_name = "NAME:VALUE")]
    pub kubo_header: Vec<String>,
    /// Time limit of one request to the node, in seconds (retried on timeout).
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub kubo_timeout: u64,
    /// Most requests to the node in flight at once.
    #[arg(long, global = true, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..100_000))]
    pub kubo_concurrency: u64,
}

/// Settings of the HAMT being written.
#[derive(Args, Clone, Copy)]
pub struct TreeOpts {
    /// Most entries per bucket (py-hamt's max_bucket_size); must match the tree's.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..4097))]
    pub bucket_size: u64,
}

/// Value encryption, py-hamt's `SimpleEncryptedZarrHAMTStore` format.
#[derive(Args, Clone, Default)]
pub struct CryptOpts {
    /// Encrypt (import, put) or decrypt (export, get, serve) every value with XChaCha20-Poly1305 under the
    /// key in FILE: 32 raw bytes or 64 hex characters. Keys (paths) stay in clear.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Associated data authenticated with every value (py-hamt's `header`); not stored, so
    /// readers must pass the same one.
    #[arg(
        long,
        value_name = "H",
        requires = "encrypt_key_file",
        default_value = ""
    )]
    pub header: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Store every regular file under DIR (key = path relative to DIR, `/`-separated) and print
    /// the root CID. Crash-safe: an interrupted import leaves a valid store; run it again.
    Import {
        /// Directory to import.
        dir: PathBuf,
        #[command(flatten)]
        tree: TreeOpts,
        /// Value bytes buffered before each durable write to the store.
        #[arg(long, default_value_t = 16 << 20, value_name = "BYTES",
              value_parser = clap::value_parser!(u64).range(1..))]
        batch_bytes: u64,
        /// Print a JSON object instead of the bare CID.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        crypt: CryptOpts,
        #[command(flatten)]
        layout: sharded_cmd::ImportLayout,
        /// Build with the bulk builder (external sort, tree or shards written as the sorted
        /// stream passes: memory stays flat however many files): `auto` does so past a
        /// threshold of files, `always` and `never` force the choice. The root is the same.
        #[arg(long, value_enum, default_value_t = bulk_import::BulkMode::Auto)]
        bulk: bulk_import::BulkMode,
    },
    /// The same dataset in the other layout, pointing at the same value blocks (nothing is
    /// copied): `--to sharded` is py-hamt's convert_hamt_to_sharded (same root); `--to hamt`
    /// turns a sharded store into a ZarrHAMTStore HAMT.
    Convert {
        /// The root to convert.
        cid: String,
        /// Layout to convert to.
        #[arg(long, value_enum)]
        to: sharded_cmd::LayoutArg,
        /// Chunk CIDs per shard block (--to sharded).
        #[arg(long, default_value_t = ipfs_hamt::sharded::DEFAULT_CHUNKS_PER_SHARD, value_name = "N",
              value_parser = clap::value_parser!(u64).range(1..=ipfs_hamt::sharded::MAX_CHUNKS_PER_SHARD))]
        chunks_per_shard: u64,
    },
    /// Grow (or shrink) an array of a sharded root to SHAPE (comma-separated): its shard
    /// index and its zarr.json `shape` (py-hamt's resize_store + resize_variable). Then write
    /// the new region, or graft a batch in. Prints the new root.
    Resize {
        /// The sharded root.
        cid: String,
        /// The array path, e.g. `0/temp`.
        array: String,
        /// The new shape, e.g. `48,721,1440`.
        #[arg(value_parser = sharded_cmd::parse_dims)]
        shape: sharded_cmd::Dims,
        /// Change only the shard index, not zarr.json (py-hamt's resize_store alone).
        #[arg(long)]
        index_only: bool,
    },
    /// Copy every chunk of SOURCE's array into CID's array at a chunk offset (py-hamt's
    /// graft_store): publish a separately built batch into a grown dataset. Prints the new root.
    Graft {
        /// The sharded root to graft into.
        cid: String,
        /// The sharded root of the batch (in the same store).
        source: String,
        /// Chunk offset, one per dimension, e.g. `4,0,0`.
        #[arg(long, value_parser = sharded_cmd::parse_dims)]
        offset: sharded_cmd::Dims,
        /// The array of SOURCE (default: its primary array).
        #[arg(long, value_name = "PATH")]
        source_array: Option<String>,
        /// The array of CID (default: the source array's path).
        #[arg(long, value_name = "PATH")]
        target_array: Option<String>,
    },
    /// Rewrite a sharded_zarr_v1 root as sharded_zarr_v2 with its shards under ARRAY (e.g.
    /// `0/temp`); prints the new root.
    Migrate {
        /// The v1 root.
        cid: String,
        /// The array path the v1 shards belong to in the v2 store.
        array: String,
    },
    /// Write every key as a file under DIR (the reverse of import): `export [CID] DIR`.
    #[command(
        override_usage = "ipfs-hamt export [--car FILE] CID DIR\n       ipfs-hamt export --car FILE DIR"
    )]
    Export {
        /// CID, then DIR; or only DIR with --car (the CAR's root).
        #[arg(value_name = "CID")]
        first: String,
        /// The directory to create or fill.
        #[arg(value_name = "DIR")]
        second: Option<PathBuf>,
        #[command(flatten)]
        crypt: CryptOpts,
    },
    /// List keys (sorted), optionally only those starting with PREFIX: `ls [CID] [PREFIX]`.
    #[command(
        override_usage = "ipfs-hamt ls [--car FILE] CID [PREFIX]\n       ipfs-hamt ls --car FILE [PREFIX]"
    )]
    Ls {
        /// The root CID. With --car it may be left out; a lone argument that does not parse as
        /// a CID is then the prefix.
        #[arg(value_name = "CID")]
        first: Option<String>,
        /// Key prefix.
        #[arg(value_name = "PREFIX")]
        second: Option<String>,
    },
    /// Write the value of KEY to stdout or a file: `get [CID] KEY`.
    #[command(
        override_usage = "ipfs-hamt get [OPTIONS] CID KEY\n       ipfs-hamt get [OPTIONS] --car FILE KEY"
    )]
    Get {
        /// CID, then KEY; or only KEY with --car (the CAR's root).
        #[arg(value_name = "CID")]
        first: String,
        /// The key.
        #[arg(value_name = "KEY")]
        second: Option<String>,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Only bytes A..=B (`A-B`), from A (`A-`) or the last N (`-N`).
        #[arg(long, value_name = "A-B", value_parser = parse_range, allow_hyphen_values = true)]
        range: Option<ByteRange>,
        #[command(flatten)]
        crypt: CryptOpts,
    },
    /// Set KEY to the contents of FILE (`-` for stdin) and print the new root.
    Put {
        /// The root to change.
        cid: String,
        /// The key.
        key: String,
        /// The value's file, or `-` for stdin.
        file: PathBuf,
        #[command(flatten)]
        tree: TreeOpts,
        #[command(flatten)]
        crypt: CryptOpts,
    },
    /// Remove KEY and print the new root.
    Rm {
        /// The root to change.
        cid: String,
        /// The key.
        key: String,
        #[command(flatten)]
        tree: TreeOpts,
    },
    /// Keys, nodes, depth histogram and bytes of the tree.
    Stat {
        /// The root (optional with --car).
        cid: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read every block reachable from CID (nodes, values, UnixFS file blocks) and check its
    /// hash; list missing or corrupt blocks and fail if there are any.
    Verify {
        /// The root (optional with --car).
        #[arg(conflicts_with = "all")]
        cid: Option<String>,
        /// Check every block in the store instead, reachable or not (after a crash).
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys added, removed and changed from CID_A to CID_B. Reads only the nodes that
    /// differ: subtrees with equal CIDs are skipped.
    Diff {
        /// The old root.
        cid_a: String,
        /// The new root.
        cid_b: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the dataset read-only over HTTP as a plain Zarr store: `GET /KEY` (with
    /// `Range`) and `HEAD`, values decrypted with --encrypt-key-file; `GET /DIR/` lists a
    /// directory (HTML links, as fsspec and xarray.open_zarr(url) read them). Prints
    /// `serving CID on http://ADDR` first; stops on Ctrl-C.
    Serve {
        /// The root (optional with --car).
        cid: Option<String>,
        /// Address to listen on (port 0: any free port, printed).
        #[arg(long, default_value = "127.0.0.1:8000", value_name = "HOST:PORT")]
        addr: String,
        #[command(flatten)]
        crypt: CryptOpts,
    },
    /// Copy every block of CID from the local store (--store or --car) to the node (--kubo),
    /// in bulk (CAR streamed to dag/import), then pin it on the node (unless --no-pin).
    Push {
        /// The root.
        cid: String,
    },
    /// Fetch every block of CID from the node (--kubo / --gateway) into the local disk store,
    /// concurrently, each verified against its CID.
    Pull {
        /// The root.
        cid: String,
    },
    /// CAR files: copy a tree out of the store, or blocks into it.
    #[command(subcommand)]
    Car(CarCmd),
    /// Roots the disk store keeps: `gc` removes every block no pinned root reaches.
    #[command(subcommand)]
    Pin(PinCmd),
    /// Remove every block of the disk store that no pinned root reaches and give the space
    /// back to the file system; prints the blocks and bytes freed.
    Gc {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PinCmd {
    /// Pin CID (its root block must be in the store).
    Add {
        /// The root.
        cid: String,
    },
    /// List the pinned roots, one per line.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unpin CID (its blocks go at the next `gc` unless another pin reaches them).
    Rm {
        /// The root.
        cid: String,
    },
}

#[derive(Subcommand)]
enum CarCmd {
    /// Write every block reachable from CID to OUT (CARv1, root CID, depth-first order).
    Export {
        /// The root.
        cid: String,
        /// The CAR file to write.
        out: PathBuf,
    },
    /// Copy every block of IN (verified) into the disk store and print its root(s).
    Import {
        /// The CAR file to read.
        input: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `A-B`, `A-` or `-N` (HTTP Range style, inclusive end).
fn parse_range(s: &str) -> Result<ByteRange, String> {
    let bad = || format!("invalid range {s:?}: expected A-B, A- or -N");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let num = |x: &str| x.parse::<u64>().map_err(|_| bad());
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Ok(ByteRange::Suffix(num(b)?)),
        (false, true) => Ok(ByteRange::From(num(a)?)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(format!("invalid range {s:?}: end before start"));
            }
            Ok(ByteRange::Slice {
                offset: a,
                length: b - a + 1,
            })
        }
        (true, true) => Err(bad()),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let o = &cli.store;
    match cli.cmd {
        Cmd::Import {
            dir,
            tree,
            batch_bytes,
            json,
            crypt,
            layout,
            bulk,
        } => import_cmd::import(o, &dir, tree, batch_bytes, json, &crypt, &layout, bulk).await,
        Cmd::Convert {
            cid,
            to,
            chunks_per_shard,
        } => sharded_cmd::convert(o, &cid, to, chunks_per_shard).await,
        Cmd::Resize {
            cid,
            array,
            shape,
            index_only,
        } => sharded_cmd::resize(o, &cid, &array, &shape.0, index_only).await,
        Cmd::Graft {
            cid,
            source,
            offset,
            source_array,
            target_array,
        } => {
            sharded_cmd::graft(
                o,
                &cid,
                &source,
                &offset.0,
                source_array.as_deref(),
                target_array.as_deref(),
            )
            .await
        }
        Cmd::Migrate { cid, array } => sharded_cmd::migrate(o, &cid, &array).await,
        Cmd::Export {
            first,
            second,
            crypt,
        } => cmd::export(o, first, second, &crypt).await,
        Cmd::Ls { first, second } => cmd::ls(o, first, second).await,
        Cmd::Get {
            first,
            second,
            output,
            range,
            crypt,
        } => cmd::get(o, first, second, output, range.unwrap_or_default(), &crypt).await,
        Cmd::Put {
            cid,
            key,
            file,
            tree,
            crypt,
        } => cmd::put(o, &cid, &key, &file, tree, &crypt).await,
        Cmd::Rm { cid, key, tree } => cmd::rm(o, &cid, &key, tree).await,
        Cmd::Stat { cid, json } => cmd::stat(o, cid.as_deref(), json).await,
        Cmd::Verify { cid, all, json } => {
            if all {
                cmd::verify_all(o, json).await
            } else {
                cmd::verify(o, cid.as_deref(), json).await
            }
        }
        Cmd::Diff { cid_a, cid_b, json } => cmd::diff(o, &cid_a, &cid_b, json).await,
        Cmd::Serve { cid, addr, crypt } => serve::serve(o, cid.as_deref(), &addr, &crypt).await,
        Cmd::Push { cid } => cmd::push(o, &cid, !o.no_pin).await,
        Cmd::Pull { cid } => cmd::pull(o, &cid).await,
        Cmd::Car(CarCmd::Export { cid, out }) => cmd::car_export(o, &cid, &out).await,
        Cmd::Car(CarCmd::Import { input, json }) => cmd::car_import(o, &input, json).await,
        Cmd::Pin(PinCmd::Add { cid }) => pins::add(o, &cid).await,
        Cmd::Pin(PinCmd::Ls { json }) => pins::ls(o, json).await,
        Cmd::Pin(PinCmd::Rm { cid }) => pins::rm(o, &cid).await,
        Cmd::Gc { json } => pins::gc(o, json).await,
    }
}

/// True if the error is a closed stdout (`ipfs-hamt ls | head`): not worth a message.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The last panic's message, printed if it ends the command.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Prints the panic that ended the command as one line.
fn internal_error() -> ExitCode {
    let msg = LAST_PANIC
        .lock()
        .ok()
        .and_then(|mut m| m.take())
        .unwrap_or_else(|| "panic".to_owned());
    eprintln!("ipfs-hamt: internal error: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    // A bug must still end in one line, never a backtrace. The hook only records the panic:
    // panics that are caught and turned into errors (the disk store guards redb's open, tokio
    // turns a panicking task into an error) must not print a second line. One that escapes
    // the command is printed below.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(msg);
        }
    }));
    // Argument parsing runs user-facing code too (value parsers): a bug there must print its
    // line like any other.
    let parsed = match std::panic::catch_unwind(Cli::try_parse) {
        Ok(parsed) => parsed,
        Err(_) => return internal_error(),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || matches!(
                    e.kind(),
                    ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                let _ = e.print();
                return if e.exit_code() == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                };
            }
            // One line: clap's first line, without its "error: " prefix.
            let text = e.render().to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // "the following required arguments were not provided:" names them next.
            let line = match (first.ends_with(':'), lines.next()) {
                (true, Some(next)) => format!("{first} {next}"),
                _ => first.to_string(),
            };
            eprintln!("ipfs-hamt: {line} (see --help)");
            return ExitCode::from(2);
        }
    };
    // The process exits right after the command: a store need not wait for its index's
    // threads to stop (up to 0.25 s per command).
    ipfs_hamt::store::disk::set_close_in_background(true);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipfs-hamt: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(run(cli)))) {
            Ok(result) => result,
            Err(_) => return internal_error(),
        };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let mut msg = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                // Some errors print their source too; do not repeat it.
                if !msg.ends_with(&cause) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&cause);
                }
            }
            let msg = msg.replace('\n', " ");
            eprintln!("ipfs-hamt: {msg}");
            ExitCode::FAILURE
        }
    }
}
