// Look-alikes of the independent awaits the sequential-awaits warning reports, each with a
// dependency that makes one round per await necessary: none warns (`deny(warnings)`), and
// each runs.
#![deny(warnings)]

use asynq_core::{Error, Runtime, asynq};

#[asynq]
fn best_friend(uid: u64) -> Result<u64, Error> {
    Ok(uid + 1)
}

#[asynq]
fn post_count(uid: u64) -> Result<u64, Error> {
    Ok(uid * 3)
}

#[asynq]
fn is_admin(uid: u64) -> bool {
    uid == 1
}

struct Page {
    items: Vec<u64>,
    next: Option<u64>,
}

#[asynq]
fn page(cursor: u64) -> Page {
    Page {
        items: vec![cursor],
        next: (cursor < 3).then_some(cursor + 1),
    }
}

// In one expression: the second await's operand needs the first one's result.
#[asynq]
fn friends_posts(uid: u64) -> Result<u64, Error> {
    Ok(post_count(uid).await? + post_count(best_friend(uid).await?).await?)
}

// `&&` awaits its right side only when the left one is true: left as written.
#[asynq]
fn both_admins(a: u64, b: u64) -> bool {
    is_admin(a).await && is_admin(b).await
}

struct Card {
    posts: u64,
    friend_posts: u64,
}

// Struct literal fields, one needing another await's result.
#[asynq]
fn card(uid: u64) -> Result<Card, Error> {
    Ok(Card {
        posts: post_count(uid).await?,
        friend_posts: post_count(best_friend(uid).await?).await?,
    })
}

fn note(posts: u64) -> u64 {
    posts + 100
}

// A statement between the awaits uses the first result before the second await starts.
#[asynq]
fn noted(uid: u64) -> Result<(u64, u64), Error> {
    let posts = post_count(uid).await?;
    let noted = note(posts);
    let friend = best_friend(uid).await?;
    Ok((noted, friend))
}

// The second await's operand needs the extended result.
#[asynq]
fn extended(uid: u64) -> Result<Vec<u64>, Error> {
    let mut v = vec![post_count(uid).await?];
    v.extend([post_count(v[0]).await?]);
    Ok(v)
}

// Each iteration's cursor comes from the previous iteration's result.
#[asynq]
fn all_items() -> Vec<u64> {
    let mut items = Vec::new();
    let mut next = Some(0);
    while let Some(cursor) = next {
        let p = page(cursor).await;
        items.extend(p.items);
        next = p.next;
    }
    items
}

// The loop stops on a result.
#[asynq]
fn items_until_last() -> Vec<u64> {
    let mut items = Vec::new();
    let mut cursor = 0;
    loop {
        let p = page(cursor).await;
        items.extend(p.items);
        if p.next.is_none() {
            break;
        }
        cursor += 1;
    }
    items
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(rt.run(friends_posts(1)).unwrap(), 3 + 6);
    assert!(!rt.run(both_admins(1, 2)).unwrap());
    let card = rt.run(card(1)).unwrap();
    assert_eq!((card.posts, card.friend_posts), (3, 6));
    assert_eq!(rt.run(noted(1)).unwrap(), (103, 2));
    assert_eq!(rt.run(extended(1)).unwrap(), [3, 9]);
    assert_eq!(rt.run(all_items()).unwrap(), [0, 1, 2, 3]);
    assert_eq!(rt.run(items_until_last()).unwrap(), [0, 1, 2, 3]);
}
