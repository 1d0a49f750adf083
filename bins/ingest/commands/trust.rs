//! `ingest trust`: keys trusted to sign bundles per channel, thresholds, the channel clock,
//! and peer servers' keys for update lists.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferry_core::base::names::{Channel, KeyId};
use ferry_core::formats::approval::Actor;
use ferry_core::formats::keys;
use ferry_core::ingest::trust;

use crate::PROGRAM;
use crate::common::{code, json_line, safe};
use crate::context::Context;

#[derive(Subcommand)]
pub enum TrustCommand {
    /// Trust a public key (minisign format) for a channel.
    Add(TrustAddArgs),
    /// List trusted keys.
    List(TrustListArgs),
    /// Stop trusting a key.
    Remove(TrustRemoveArgs),
    /// How many distinct trusted keys must sign each bundle of a channel (k of n).
    Threshold(TrustThresholdArgs),
    /// Forget the latest bundle time of a channel, against which expiry is judged, after a
    /// bundle dated in the future made fresh ones look expired (logged).
    ClockReset(ChannelArgs),
    /// Trust another management server's key (`ingest server-key export` there) for the
    /// update lists and groups it exports; never for bundles.
    AddPeer(PeerAddArgs),
    /// Stop trusting a peer server's key.
    RemovePeer(PeerRemoveArgs),
    /// The peer servers' keys trusted for update lists and groups.
    Peers(PeersArgs),
}

#[derive(Args)]
pub struct PeerAddArgs {
    pub public_key: PathBuf,
    /// Who acts (recorded in the audit log); the login name (else the account name of the process) by default.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

#[derive(Args)]
pub struct PeerRemoveArgs {
    pub key_id: ferry_core::base::names::KeyId,
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

#[derive(Args)]
pub struct PeersArgs {
    /// One JSON object per key.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ChannelArgs {
    #[arg(long, default_value = "default")]
    pub channel: Channel,
}

#[derive(Args)]
pub struct TrustThresholdArgs {
    /// At least 1 and at most the number of keys the channel trusts.
    pub threshold: usize,
    #[arg(long, default_value = "default")]
    pub channel: Channel,
}

#[derive(Args)]
pub struct TrustAddArgs {
    pub public_key: PathBuf,
    #[arg(long, default_value = "default")]
    pub channel: Channel,
    /// Accept the demo key shipped in samples/ (anyone can sign with it).
    #[arg(long)]
    pub allow_demo_key: bool,
}

#[derive(Args)]
pub struct TrustListArgs {
    #[arg(long)]
    pub channel: Option<Channel>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TrustRemoveArgs {
    pub key_id: KeyId,
    #[arg(long, default_value = "default")]
    pub channel: Channel,
}

pub fn run(ctx: &Context, command: TrustCommand) -> anyhow::Result<u8> {
    match command {
        TrustCommand::Add(args) => add(ctx, args),
        TrustCommand::Threshold(args) => threshold(ctx, args),
        TrustCommand::ClockReset(args) => clock_reset(ctx, args),
        TrustCommand::List(args) => list(ctx, args),
        TrustCommand::AddPeer(args) => add_peer(ctx, args),
        TrustCommand::RemovePeer(args) => remove_peer(ctx, args),
        TrustCommand::Peers(args) => peers(ctx, args),
        TrustCommand::Remove(args) => remove(ctx, args),
    }
}

fn add(ctx: &Context, args: TrustAddArgs) -> anyhow::Result<u8> {
    let key = keys::read_public_key(&args.public_key)?;
    trust::may_trust(&key, args.allow_demo_key)?;
    if keys::is_demo_key(&key) {
        eprintln!("{PROGRAM}: warning: trusting the public demo key {}; anyone can sign with it", key.key_id);
    }
    let mut data = ctx.write()?;
    if trust::add_key(&mut data, &args.channel, &key, args.allow_demo_key)? {
        outln!("key {} is now trusted for channel {}", key.key_id, args.channel);
    } else {
        outln!("key {} was already trusted for channel {}", key.key_id, args.channel);
    }
    Ok(code::OK)
}

fn threshold(ctx: &Context, args: TrustThresholdArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write()?;
    trust::set_threshold(&mut data, &args.channel, args.threshold)?;
    outln!("channel {}: bundles now need signatures by {} distinct trusted keys", args.channel, args.threshold);
    Ok(code::OK)
}

fn clock_reset(ctx: &Context, args: ChannelArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write()?;
    match trust::reset_clock(&mut data, &args.channel)? {
        Some(t) => outln!(
            "channel {}: forgot the latest bundle time {t}; expiry is now judged against the system clock ({})",
            args.channel,
            ferry_core::base::clock::Timestamp::now()
        ),
        None => outln!("channel {}: no bundle time was recorded; nothing to forget", args.channel),
    }
    Ok(code::OK)
}

fn list(ctx: &Context, args: TrustListArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    if !args.json {
        for p in trust::policies(&data)? {
            if args.channel.as_ref().is_none_or(|c| c.as_str() == p.channel) {
                outln!(
                    "channel {}: {} of {} trusted keys must sign (trust version {})",
                    p.channel,
                    p.threshold,
                    p.keys,
                    p.version
                );
            }
        }
    }
    for k in trust::keys(&data, args.channel.as_ref())? {
        if args.json {
            json_line("trusted-key", &k)?;
        } else {
            outln!("{}  channel {}  added {}", k.key_id, k.channel, k.added_at);
        }
    }
    Ok(code::OK)
}

fn add_peer(ctx: &Context, args: PeerAddArgs) -> anyhow::Result<u8> {
    let actor = Actor::acting(args.by.as_deref())?;
    let key = keys::read_public_key(&args.public_key)?;
    trust::may_trust(&key, false)?;
    let mut data = ctx.write()?;
    if trust::add_peer(&mut data, &key, &actor)? {
        outln!("peer key {} is now trusted for update lists and groups (never for bundles)", key.key_id);
    } else {
        outln!("peer key {} was already trusted", key.key_id);
    }
    Ok(code::OK)
}

fn remove_peer(ctx: &Context, args: PeerRemoveArgs) -> anyhow::Result<u8> {
    let actor = Actor::acting(args.by.as_deref())?;
    let mut data = ctx.write()?;
    trust::remove_peer(&mut data, &args.key_id, &actor)?;
    outln!("peer key {} is no longer trusted", args.key_id);
    Ok(code::OK)
}

fn peers(ctx: &Context, args: PeersArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let peers = trust::peers(&data)?;
    if !args.json && peers.is_empty() {
        outln!("no peer keys (trust one with `ingest trust add-peer FILE`)");
    }
    for p in &peers {
        if args.json {
            json_line("peer-key", p)?;
        } else {
            outln!("{}  added by {} at {}", p.key_id, safe(&p.added_by), p.added_at);
        }
    }
    Ok(code::OK)
}

fn remove(ctx: &Context, args: TrustRemoveArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write()?;
    trust::remove_key(&mut data, &args.channel, &args.key_id)?;
    outln!("key {} is no longer trusted for channel {}", args.key_id, args.channel);
    Ok(code::OK)
}
