//! Retention: which restore points of a subject to keep (last N, and the newest of each of the
//! last N days, ISO weeks and months, on the UTC calendar), and forgetting the others.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike as _, Utc};
use serde::{Deserialize, Serialize};

use super::error::RepoError;
use super::manifest::{RestorePointId, RestorePointKind};
use super::repository::Repository;

/// How many restore points to keep per subject (per VM for kind VM). A restore point kept by
/// any rule is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// The newest N.
    pub keep_last: u32,
    /// The newest of each of the last N calendar days that have one.
    pub keep_daily: u32,
    /// The newest of each of the last N ISO weeks that have one.
    pub keep_weekly: u32,
    /// The newest of each of the last N calendar months that have one.
    pub keep_monthly: u32,
}

impl RetentionPolicy {
    /// True if the policy keeps nothing (refused by [`Repository::forget`]).
    pub fn is_empty(&self) -> bool {
        self.keep_last == 0
            && self.keep_daily == 0
            && self.keep_weekly == 0
            && self.keep_monthly == 0
    }
}

/// Which of `times` the policy keeps: `result[i]` is true if `times[i]` is kept. Ties in time
/// are broken by position (later position counts as newer).
pub fn select_retained(times: &[DateTime<Utc>], policy: &RetentionPolicy) -> Vec<bool> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| (times[b], b).cmp(&(times[a], a)));
    let mut keep = vec![false; times.len()];
    for &i in order.iter().take(policy.keep_last as usize) {
        keep[i] = true;
    }
    let mut bucket_rule = |limit: u32, bucket: &dyn Fn(DateTime<Utc>) -> (i32, u32)| {
        let mut last = None;
        let mut kept = 0;
        for &i in &order {
            if kept >= limit {
                break;
            }
            let key = bucket(times[i]);
            if last != Some(key) {
                last = Some(key);
                keep[i] = true;
                kept += 1;
            }
        }
    };
    bucket_rule(policy.keep_daily, &|t| (t.year(), t.ordinal()));
    bucket_rule(policy.keep_weekly, &|t| {
        let week = t.iso_week();
        (week.year(), week.week())
    });
    bucket_rule(policy.keep_monthly, &|t| (t.year(), t.month()));
    keep
}

/// What forget decided for one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectDecision {
    /// The kind.
    pub kind: RestorePointKind,
    /// The subject (VM UUID for kind VM).
    pub subject: String,
    /// Restore points kept, oldest first.
    pub kept: Vec<RestorePointId>,
    /// Restore points forgotten (their manifests deleted), oldest first.
    pub forgotten: Vec<RestorePointId>,
}

/// What [`Repository::forget`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetReport {
    /// One decision per subject.
    pub subjects: Vec<SubjectDecision>,
    /// True if nothing was deleted (a dry run).
    pub dry_run: bool,
}

impl Repository {
    /// Applies `policy` to every subject of `kind`: deletes the manifests of the restore points
    /// it does not keep (their chunks and indexes go at a later [`Repository::prune`]). With
    /// `dry_run`, only reports.
    pub async fn forget(
        &self,
        kind: RestorePointKind,
        policy: &RetentionPolicy,
        dry_run: bool,
    ) -> crate::Result<ForgetReport> {
        if policy.is_empty() {
            return Err(RepoError::InvalidInput {
                reason: "a retention policy that keeps nothing is refused: forget restore points \
                         one by one instead"
                    .to_owned(),
            }
            .into());
        }
        let mut by_subject: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for manifest in self.list(kind).await? {
            by_subject
                .entry(manifest.subject.clone())
                .or_default()
                .push(manifest);
        }
        let mut report = ForgetReport {
            subjects: Vec::new(),
            dry_run,
        };
        for (subject, manifests) in by_subject {
            let times: Vec<_> = manifests.iter().map(|m| m.created_at).collect();
            let keep = select_retained(&times, policy);
            let mut decision = SubjectDecision {
                kind,
                subject,
                kept: Vec::new(),
                forgotten: Vec::new(),
            };
            for (manifest, keep) in manifests.iter().zip(keep) {
                if keep {
                    decision.kept.push(manifest.id.clone());
                } else {
                    if !dry_run {
                        self.store().delete(&self.manifest_object(manifest)).await?;
                    }
                    decision.forgotten.push(manifest.id.clone());
                }
            }
            report.subjects.push(decision);
        }
        Ok(report)
    }

    /// Forgets one restore point: deletes its manifest (its data goes at a later prune).
    pub async fn forget_restore_point(
        &self,
        manifest: &super::manifest::Manifest,
    ) -> crate::Result<()> {
        Ok(self.store().delete(&self.manifest_object(manifest)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone as _};

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn kept(times: &[DateTime<Utc>], policy: RetentionPolicy) -> Vec<DateTime<Utc>> {
        select_retained(times, &policy)
            .into_iter()
            .zip(times)
            .filter_map(|(k, t)| k.then_some(*t))
            .collect()
    }

    #[test]
    fn keep_last_keeps_the_newest_whatever_the_input_order() {
        let times = [at(2026, 1, 3, 0), at(2026, 1, 1, 0), at(2026, 1, 2, 0)];
        let policy = RetentionPolicy {
            keep_last: 2,
            ..Default::default()
        };
        assert_eq!(kept(&times, policy), [at(2026, 1, 3, 0), at(2026, 1, 2, 0)]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day_with_backups() {
        // Four backups a day, every six hours, for ten days in March 2026.
        let times: Vec<_> = (0..40)
            .map(|i| at(2026, 3, 1, 0) + TimeDelta::hours(6 * i))
            .collect();
        let policy = RetentionPolicy {
            keep_daily: 3,
            ..Default::default()
        };
        assert_eq!(
            kept(&times, policy),
            [at(2026, 3, 8, 18), at(2026, 3, 9, 18), at(2026, 3, 10, 18)]
        );
    }

    #[test]
    fn weekly_and_monthly_follow_iso_weeks_and_calendar_months() {
        // One backup a day at noon through 2026-01-01 .. 2026-03-31.
        let times: Vec<_> = (0..90)
            .map(|i| at(2026, 1, 1, 12) + TimeDelta::days(i))
            .collect();
        let weekly = RetentionPolicy {
            keep_weekly: 2,
            ..Default::default()
        };
        // 2026-03-31 is a Tuesday (week 14); the newest of week 13 is Sunday 2026-03-29.
        assert_eq!(
            kept(&times, weekly),
            [at(2026, 3, 29, 12), at(2026, 3, 31, 12)]
        );
        let monthly = RetentionPolicy {
            keep_monthly: 5,
            ..Default::default()
        };
        assert_eq!(
            kept(&times, monthly),
            [
                at(2026, 1, 31, 12),
                at(2026, 2, 28, 12),
                at(2026, 3, 31, 12)
            ]
        );
    }

    #[test]
    fn rules_combine_and_a_gap_in_the_calendar_is_skipped() {
        let times = [
            at(2025, 12, 31, 23),
            at(2026, 1, 1, 1),
            at(2026, 1, 5, 1),
            at(2026, 1, 5, 2),
            at(2026, 1, 20, 0),
        ];
        let policy = RetentionPolicy {
            keep_last: 1,
            keep_daily: 2,
            keep_monthly: 2,
            ..Default::default()
        };
        assert_eq!(
            kept(&times, policy),
            [at(2025, 12, 31, 23), at(2026, 1, 5, 2), at(2026, 1, 20, 0)]
        );
        assert!(
            select_retained(&times, &RetentionPolicy::default())
                .iter()
                .all(|k| !k)
        );
    }
}
