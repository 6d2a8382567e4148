-- Top 10 recommendations of the most active sample user, from the latest run, with track details.
WITH latest AS (SELECT max(run_date) AS d FROM gold.recommendations),
     fan AS (
       SELECT user_id FROM silver.interactions
       GROUP BY user_id ORDER BY sum(coalesce(plays, 1)) DESC, user_id LIMIT 1)
SELECT r.user_id, r.rank, r.track_id, t.title, t.artist, t.genre, round(r.score, 4) AS score, r.source, r.model_version
FROM gold.recommendations r
JOIN silver.tracks t ON t.track_id = r.track_id
WHERE r.run_date = (SELECT d FROM latest) AND r.user_id = (SELECT user_id FROM fan)
ORDER BY r.rank
