//! The writer's changes to memberships, in its transaction (store/commit.rs): joins within the
//! rooms-per-user limit, leaves, each room's `member_count` kept in step, and read marks. Each
//! works on many rows per statement.

use super::rooms::count_of;
use super::{ReadMark, now_ms};
use crate::chat::{MessageId, User};
use entity::{membership, message, room};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    QueryFilter, QuerySelect, TryInsertResult,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Values in one `IN (…)` list or `OR` chain: small enough for SQLite's expression depth and
/// for sqlx's 8 KiB write buffer on PostgreSQL.
const PER_STATEMENT: usize = 100;

/// Membership rows per insert: about 150 bytes each, so a statement stays under sqlx's 8 KiB
/// write buffer on PostgreSQL (see `rows_per_insert` in batch.rs).
fn members_per_insert(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => 40,
        _ => 500,
    }
}

/// Which of the joins `(room id, user id, the user's most rooms)` stay within their user's
/// rooms: a user at the limit may repeat a join, not join another room. Counted in the
/// transaction that adds them, joins of the same batch included, so two joins at once cannot
/// both take the last place.
pub(super) async fn within_room_limits(
    txn: &impl ConnectionTrait,
    joins: &[(i64, &str, Option<u64>)],
) -> Result<Vec<bool>, DbErr> {
    let limited: BTreeSet<&str> = joins
        .iter()
        .filter(|(_, _, max)| max.is_some())
        .map(|(_, user, _)| *user)
        .collect();
    if limited.is_empty() {
        return Ok(vec![true; joins.len()]);
    }
    let mut held: HashMap<String, u64> = HashMap::with_capacity(limited.len());
    let limited: Vec<&str> = limited.into_iter().collect();
    for chunk in limited.chunks(PER_STATEMENT) {
        let counts: Vec<(String, i64)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::UserId)
            .column_as(membership::Column::RoomId.count(), "rooms")
            .filter(membership::Column::UserId.is_in(chunk.iter().copied()))
            .group_by(membership::Column::UserId)
            .into_tuple()
            .all(txn)
            .await?;
        held.extend(counts.into_iter().map(|(user, n)| (user, count_of(n))));
    }
    let mut allowed = Vec::with_capacity(joins.len());
    for (room_id, user, max) in joins {
        let count = held.entry((*user).to_owned()).or_default();
        let fits = match max {
            Some(max) if *count >= *max => is_member(txn, *room_id, user).await?,
            _ => {
                *count += 1;
                true
            }
        };
        allowed.push(fits);
    }
    Ok(allowed)
}

async fn is_member(txn: &impl ConnectionTrait, room_id: i64, user_id: &str) -> Result<bool, DbErr> {
    Ok(
        membership::Entity::find_by_id((room_id, user_id.to_owned()))
            .one(txn)
            .await?
            .is_some(),
    )
}

/// Adds the memberships `(room id, user)`, many per statement; answers, for each, whether it
/// is new (a user who is a member already, or twice in the list, is not). Each room's
/// `member_count` grows by its new members.
pub(super) async fn add_members(
    txn: &impl ConnectionTrait,
    joins: &[(i64, &User)],
) -> Result<Vec<bool>, DbErr> {
    let now = now_ms();
    let mut inserted: HashSet<(i64, String)> = HashSet::with_capacity(joins.len());
    let mut seen = HashSet::with_capacity(joins.len());
    let unique: Vec<&(i64, &User)> = joins
        .iter()
        .filter(|(room, user)| seen.insert((*room, user.id.as_str())))
        .collect();
    for chunk in unique.chunks(members_per_insert(txn.get_database_backend())) {
        let rows = chunk.iter().map(|(room_id, user)| membership::ActiveModel {
            room_id: Set(*room_id),
            user_id: Set(user.id.clone()),
            user_name: Set(user.name.clone()),
            joined_at: Set(now),
            last_read_seq: Set(None),
        });
        let keys = membership::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([membership::Column::RoomId, membership::Column::UserId])
            .exec_with_returning_keys(txn)
            .await?;
        if let TryInsertResult::Inserted(keys) = keys {
            inserted.extend(keys);
        }
    }
    let mut grown: BTreeMap<i64, i64> = BTreeMap::new();
    for (room_id, _) in &inserted {
        *grown.entry(*room_id).or_default() += 1;
    }
    change_counts(txn, &grown).await?;
    // The first of a (room, user) pair takes the news; a repeat in the list is a repeat.
    Ok(joins
        .iter()
        .map(|(room_id, user)| inserted.remove(&(*room_id, user.id.clone())))
        .collect())
}

/// Ends the memberships `(room id, user id)`; answers, for each, whether it ended one (false:
/// not a member, or twice in the list). One statement per room.
pub(super) async fn remove_members(
    txn: &impl ConnectionTrait,
    leaves: &[(i64, &str)],
) -> Result<Vec<bool>, DbErr> {
    let mut per_room: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    for (room_id, user_id) in leaves {
        per_room.entry(*room_id).or_default().insert(user_id);
    }
    let mut removed: HashSet<(i64, String)> = HashSet::with_capacity(leaves.len());
    let mut shrunk: BTreeMap<i64, i64> = BTreeMap::new();
    for (room_id, users) in per_room {
        let users: Vec<&str> = users.into_iter().collect();
        for chunk in users.chunks(PER_STATEMENT) {
            let gone = membership::Entity::delete_many()
                .filter(membership::Column::RoomId.eq(room_id))
                .filter(membership::Column::UserId.is_in(chunk.iter().copied()))
                .exec_with_returning(txn)
                .await?;
            *shrunk.entry(room_id).or_default() -= gone.len() as i64;
            removed.extend(gone.into_iter().map(|m| (m.room_id, m.user_id)));
        }
    }
    change_counts(txn, &shrunk).await?;
    Ok(leaves
        .iter()
        .map(|(room_id, user_id)| removed.remove(&(*room_id, (*user_id).to_owned())))
        .collect())
}

/// Adds `change` (room id → members gained, or lost when negative) to each room's count.
async fn change_counts(
    txn: &impl ConnectionTrait,
    change: &BTreeMap<i64, i64>,
) -> Result<(), DbErr> {
    let change: BTreeMap<i64, i64> = change
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(r, n)| (*r, *n))
        .collect();
    if change.is_empty() {
        return Ok(());
    }
    let mut by = CaseStatement::new();
    for (&room_id, &n) in &change {
        by = by.case(room::Column::Id.eq(room_id), Expr::val(n));
    }
    room::Entity::update_many()
        .col_expr(
            room::Column::MemberCount,
            Expr::col(room::Column::MemberCount).add(by.finally(Expr::val(0i64))),
        )
        .filter(room::Column::Id.is_in(change.keys().copied()))
        .exec(txn)
        .await?;
    Ok(())
}

/// The member counts of `rooms` now.
pub(super) async fn member_counts(
    txn: &impl ConnectionTrait,
    rooms: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, u64>, DbErr> {
    let rows: Vec<(i64, i64)> = room::Entity::find()
        .select_only()
        .column(room::Column::Id)
        .column(room::Column::MemberCount)
        .filter(room::Column::Id.is_in(rooms))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows.into_iter().map(|(id, n)| (id, count_of(n))).collect())
}

/// Moves read marks forward (never back); answers, for each, whether its message exists (a
/// mark of a message that does not is not made). One statement per message marked.
pub(super) async fn mark_read(
    txn: &impl ConnectionTrait,
    marks: &[&ReadMark],
) -> Result<Vec<bool>, DbErr> {
    let ids: BTreeSet<MessageId> = marks.iter().map(|m| m.message).collect();
    let existing = existing_messages(txn, &ids).await?;
    let mut readers: BTreeMap<MessageId, BTreeSet<&str>> = BTreeMap::new();
    for mark in marks.iter().filter(|m| existing.contains(&m.message)) {
        readers
            .entry(mark.message)
            .or_default()
            .insert(mark.user_id.as_str());
    }
    for (id, users) in readers {
        let users: Vec<&str> = users.into_iter().collect();
        for chunk in users.chunks(PER_STATEMENT) {
            membership::Entity::update_many()
                .col_expr(membership::Column::LastReadSeq, Expr::val(id.seq))
                .filter(membership::Column::RoomId.eq(id.room_id))
                .filter(membership::Column::UserId.is_in(chunk.iter().copied()))
                .filter(
                    Condition::any()
                        .add(membership::Column::LastReadSeq.is_null())
                        .add(membership::Column::LastReadSeq.lt(id.seq)),
                )
                .exec(txn)
                .await?;
        }
    }
    Ok(marks
        .iter()
        .map(|m| existing.contains(&m.message))
        .collect())
}

/// Which of `ids` name a stored message (deleted ones too).
async fn existing_messages(
    txn: &impl ConnectionTrait,
    ids: &BTreeSet<MessageId>,
) -> Result<HashSet<MessageId>, DbErr> {
    let ids: Vec<&MessageId> = ids.iter().collect();
    let mut existing = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(PER_STATEMENT) {
        let mut any = Condition::any();
        for id in chunk {
            any = any.add(
                message::Column::RoomId
                    .eq(id.room_id)
                    .and(message::Column::Seq.eq(id.seq)),
            );
        }
        let found: Vec<(i64, i64)> = message::Entity::find()
            .select_only()
            .column(message::Column::RoomId)
            .column(message::Column::Seq)
            .filter(any)
            .into_tuple()
            .all(txn)
            .await?;
        existing.extend(
            found
                .into_iter()
                .map(|(room_id, seq)| MessageId::new(room_id, seq)),
        );
    }
    Ok(existing)
}
