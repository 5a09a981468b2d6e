//! Profile photos: metadata and bytes through `$batch` (20 sub-requests per call), bytes fetched
//! only when the `@odata.mediaEtag` changed; any 404 means "no photo".
//!
//! https://learn.microsoft.com/graph/api/profilephoto-get · https://learn.microsoft.com/graph/json-batching

use futures::StreamExt;
use pbx365_domain::{PhotoRef, ReportItem};
use pbx365_graph::{photos, GraphClient, GraphError, BATCH_LIMIT};
use pbx365_store::Store;
use tokio::sync::Semaphore;

use crate::error::SyncResult;

/// Most sub-requests per `$batch` call (Microsoft's limit).
pub const BATCH_SIZE: usize = BATCH_LIMIT;

/// One extension whose photo is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoTarget {
    /// Microsoft object id.
    pub m365_id: String,
    /// Extension number.
    pub number: String,
    /// Display name (for the report).
    pub name: String,
    /// The photo stored now.
    pub current: Option<PhotoRef>,
}

/// A photo that changed: new bytes stored (`photo` is `Some`), or removed because the user has
/// none any more (`None`). Carries the extension's number and name for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoChange {
    /// Microsoft object id.
    pub m365_id: String,
    /// Extension number.
    pub number: String,
    /// Display name.
    pub name: String,
    /// The photo stored now, or `None` when it was removed.
    pub photo: Option<PhotoRef>,
}

/// What checking a group of photos found: the changes stored and the photos that could not be
/// read (report errors, not a failed run).
#[derive(Debug, Default)]
pub struct PhotoOutcome {
    /// Photos stored or removed.
    pub changes: Vec<PhotoChange>,
    /// Report errors for photos that could not be read.
    pub errors: Vec<ReportItem>,
}

enum Fetched {
    Unchanged,
    NoPhoto,
    New {
        etag: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    Failed(String),
}

/// Checks the photos of `targets` and stores what changed; returns the changes so the caller
/// can update its snapshot and report.
///
/// Each `$batch` call holds a permit of `limit`, which the photo work of several applied pages
/// shares, so the pages' batches queue behind each other (first come, first served) and the
/// number of requests in flight stays the client's limit. Up to `ahead` batches are started at a
/// time; the store writes run beside the fetches (one transaction per [`WRITE_BATCH`] photos), so
/// a commit never leaves the batches idle. At most two groups of photos wait for the writer,
/// which bounds memory.
pub async fn sync_photos(
    graph: &GraphClient,
    store: &Store,
    targets: Vec<PhotoTarget>,
    limit: &Semaphore,
    ahead: usize,
) -> SyncResult<PhotoOutcome> {
    let mut targets = targets.into_iter();
    let mut chunks: Vec<Vec<PhotoTarget>> = Vec::new();
    loop {
        let chunk: Vec<PhotoTarget> = targets.by_ref().take(BATCH_SIZE).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Write>>(2);
    let fetch = async move {
        let mut stream = futures::stream::iter(chunks.into_iter().map(|chunk| async move {
            let fetched = match limit.acquire().await {
                Ok(_permit) => fetch_chunk(graph, &chunk).await,
                Err(_) => Err(GraphError::BadResponse("the photo limit was closed".into())),
            };
            (chunk, fetched)
        }))
        .buffer_unordered(ahead.max(1));
        let mut errors = Vec::new();
        let mut group: Vec<Write> = Vec::new();
        while let Some((chunk, fetched)) = stream.next().await {
            for (target, result) in chunk.into_iter().zip(fetched?) {
                match result {
                    Fetched::Unchanged => {}
                    Fetched::NoPhoto if target.current.is_none() => {}
                    Fetched::NoPhoto => group.push(Write::Remove(target)),
                    Fetched::New {
                        etag,
                        content_type,
                        bytes,
                    } => group.push(Write::Store(target, etag, content_type, bytes)),
                    Fetched::Failed(why) => errors.push(ReportItem {
                        extension: Some(target.number),
                        m365_id: Some(target.m365_id),
                        name: Some(target.name),
                        fields: vec!["photo".into()],
                        reason: Some(format!("the photo could not be read: {why}")),
                    }),
                }
            }
            if group.len() >= WRITE_BATCH && tx.send(std::mem::take(&mut group)).await.is_err() {
                // The writer failed; its error is the one reported.
                break;
            }
        }
        if !group.is_empty() {
            let _ = tx.send(group).await;
        }
        Ok::<_, crate::error::SyncError>(errors)
    };
    let write = async {
        let mut changes = Vec::new();
        while let Some(group) = rx.recv().await {
            write_photos(store, group, &mut changes).await?;
        }
        Ok::<_, crate::error::SyncError>(changes)
    };
    let (errors, changes) = tokio::join!(fetch, write);
    // A failed write ends the fetches (the channel closes); report the write's error first.
    let changes = changes?;
    Ok(PhotoOutcome {
        changes,
        errors: errors?,
    })
}

/// Photos written per store transaction.
const WRITE_BATCH: usize = 200;

/// One photo change to write.
enum Write {
    /// New bytes: (target, etag, content type, bytes).
    Store(PhotoTarget, String, String, Vec<u8>),
    /// The user has no photo any more.
    Remove(PhotoTarget),
}

/// Writes one group of photo changes (new photos in one transaction) and records them.
async fn write_photos(
    store: &Store,
    group: Vec<Write>,
    changes: &mut Vec<PhotoChange>,
) -> SyncResult<()> {
    let mut new = Vec::with_capacity(group.len());
    for w in group {
        match w {
            Write::Store(target, etag, ct, bytes) => new.push((target, etag, ct, bytes)),
            Write::Remove(target) => {
                store.delete_photo(&target.number).await?;
                changes.push(PhotoChange {
                    m365_id: target.m365_id,
                    number: target.number,
                    name: target.name,
                    photo: None,
                });
            }
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    let rows: Vec<(&str, &str, &str, &[u8])> = new
        .iter()
        .map(|(t, etag, ct, bytes)| {
            (
                t.number.as_str(),
                etag.as_str(),
                ct.as_str(),
                bytes.as_slice(),
            )
        })
        .collect();
    store.put_photos(&rows).await?;
    drop(rows);
    for (target, etag, content_type, _) in new {
        changes.push(PhotoChange {
            m365_id: target.m365_id,
            number: target.number,
            name: target.name,
            photo: Some(PhotoRef { etag, content_type }),
        });
    }
    Ok(())
}

/// Up to 20 photos: extensions that have a stored photo get a metadata batch first (etag
/// compare), and only the changed ones plus those with no stored photo get their bytes, in one
/// `$value` batch whose `ETag` header gives the etag. A first sync thus costs one batch per 20
/// users. A whole-batch failure (after the client's retries) fails the run.
async fn fetch_chunk(
    graph: &GraphClient,
    chunk: &[PhotoTarget],
) -> Result<Vec<Fetched>, GraphError> {
    let mut out: Vec<Fetched> = chunk.iter().map(|_| Fetched::Unchanged).collect();
    // (index, etag from metadata if known, content type from metadata if known)
    let mut wanted: Vec<(usize, Option<String>, Option<String>)> = Vec::new();
    let known: Vec<usize> = (0..chunk.len())
        .filter(|&i| chunk[i].current.is_some())
        .collect();
    if !known.is_empty() {
        let metas = graph
            .batch(
                known
                    .iter()
                    .map(|&i| photos::metadata_request(i.to_string(), &chunk[i].m365_id))
                    .collect(),
            )
            .await?;
        for (&i, r) in known.iter().zip(metas) {
            match photos::metadata_from_batch(&r).map_err(reason) {
                Ok(None) => out[i] = Fetched::NoPhoto,
                Ok(Some(meta)) => {
                    let etag = meta.media_etag.clone().unwrap_or_default();
                    let same = !etag.is_empty()
                        && chunk[i].current.as_ref().is_some_and(|c| c.etag == etag);
                    if !same {
                        wanted.push((
                            i,
                            Some(etag).filter(|e| !e.is_empty()),
                            meta.media_content_type.clone(),
                        ));
                    }
                }
                Err(why) => out[i] = Fetched::Failed(why),
            }
        }
    }
    wanted.extend(
        (0..chunk.len())
            .filter(|&i| chunk[i].current.is_none())
            .map(|i| (i, None, None)),
    );
    if wanted.is_empty() {
        return Ok(out);
    }
    let values = graph
        .batch(
            wanted
                .iter()
                .map(|(i, _, _)| photos::value_request(i.to_string(), &chunk[*i].m365_id))
                .collect(),
        )
        .await?;
    for ((i, meta_etag, meta_type), r) in wanted.into_iter().zip(values) {
        out[i] = match photos::value_from_batch(&r).map_err(reason) {
            Ok(None) => Fetched::NoPhoto,
            Ok(Some(v)) => Fetched::New {
                // Without any etag the photo is stored with an empty one: the next run's metadata
                // check then sees a difference and fetches it once more with its etag.
                etag: meta_etag.or(v.etag).unwrap_or_default(),
                content_type: v
                    .content_type
                    .or(meta_type)
                    .unwrap_or_else(|| "image/jpeg".into()),
                bytes: v.bytes,
            },
            Err(why) => Fetched::Failed(why),
        };
    }
    Ok(out)
}

/// Why a photo could not be read, for the report: Microsoft's sentence, or what was wrong with
/// the answer.
fn reason(err: GraphError) -> String {
    match err {
        GraphError::BadResponse(detail) => detail,
        err => err.to_string(),
    }
}
