//! Who may do what, beyond membership (which the store knows).

use super::{ChatError, User};

/// Only a message's author may edit or delete it.
pub fn ensure_author(author_id: &str, user: &User) -> Result<(), ChatError> {
    if author_id == user.id {
        Ok(())
    } else {
        Err(ChatError::forbidden(
            "only the author may change this message",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ErrorCode;

    #[test]
    fn only_the_author_may_change_a_message() {
        let alice = User {
            id: "alice".into(),
            name: "Alice".into(),
        };
        assert!(ensure_author("alice", &alice).is_ok());
        assert_eq!(
            ensure_author("bob", &alice).map_err(|e| e.code),
            Err(ErrorCode::Forbidden)
        );
    }
}
