"""Step "merge": a subject's original attributes clustered by embedding similarity.

Agglomerative clustering on cosine distance with a distance threshold of 1 - similarity
threshold; each cluster becomes one merged attribute worded as its most central original, and
the originals stay linked through `merged_from`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from personalization.backends.registry import embedder
from personalization.models import Attribute, ModelRun, ModelRunItem
from personalization.pipeline.runner import ItemResult, json_raw


def clusters_by_similarity(vectors: list[list[float]], *, threshold: float) -> list[list[int]]:
    """Groups of indexes whose members are joined at cosine similarity >= threshold (average linkage).

    Each group is ordered most central first (highest mean similarity to the rest of its group).
    """
    import numpy as np

    if not vectors:
        return []
    if len(vectors) == 1:
        return [[0]]
    from sklearn.cluster import AgglomerativeClustering

    matrix = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms == 0, 1.0, norms)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=1.0 - threshold
    ).fit_predict(matrix)
    similarity = matrix @ matrix.T
    groups: list[list[int]] = []
    for label in sorted(set(labels.tolist()), key=lambda value: labels.tolist().index(value)):
        members = [i for i, value in enumerate(labels.tolist()) if value == label]
        centrality = {i: float(np.mean([similarity[i, j] for j in members])) for i in members}
        groups.append(sorted(members, key=lambda i: (-centrality[i], i)))
    return groups


class MergeExecutor:
    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.embedder = embedder(run.model_name)
        self.threshold = float(run.params.get("threshold", settings.ATTUNE_MERGE_THRESHOLD))
        self.extract_run_id = int(run.params["extract_run_id"])

    def process(self, items: list[ModelRunItem]) -> list[ItemResult]:
        subject_ids = {item.pk: int(item.input_key.split(":")[1]) for item in items}
        originals: dict[int, list[Attribute]] = {subject_id: [] for subject_id in subject_ids.values()}
        for attribute in Attribute.objects.filter(
            subject_id__in=originals, level=Attribute.Level.ORIGINAL, model_run_id=self.extract_run_id
        ).order_by("id"):
            originals[attribute.subject_id].append(attribute)
        texts = [a.text for subject_id in originals for a in originals[subject_id]]
        # One embedding call for the whole batch of subjects.
        vectors = self.embedder.embed(texts) if texts else []
        offset = 0
        by_subject_vectors: dict[int, list[list[float]]] = {}
        for subject_id, attributes in originals.items():
            by_subject_vectors[subject_id] = vectors[offset : offset + len(attributes)]
            offset += len(attributes)
        results = []
        for item in items:
            subject_id = subject_ids[item.pk]
            attributes = originals[subject_id]
            groups = clusters_by_similarity(by_subject_vectors[subject_id], threshold=self.threshold)
            clusters = [[attributes[i] for i in group] for group in groups]
            raw = json_raw({"threshold": self.threshold, "clusters": [[a.pk for a in cluster] for cluster in clusters]})
            results.append(ItemResult(item_id=item.pk, raw_output=raw, write=self._writer(subject_id, clusters)))
        return results

    def _writer(self, subject_id: int, clusters: list[list[Attribute]]) -> Callable[[], None]:
        run = self.run

        def write() -> None:
            for cluster in clusters:
                central = cluster[0]
                reasons = list(dict.fromkeys(a.reason for a in cluster if a.reason))
                confidences = [a.confidence for a in cluster if a.confidence is not None]
                merged, _ = Attribute.objects.get_or_create(
                    subject_id=subject_id,
                    level=Attribute.Level.MERGED,
                    text=central.text,
                    model_run=run,
                    defaults={
                        "origin": Attribute.Origin.MODEL,
                        "reason": "; ".join(reasons),
                        "confidence": sum(confidences) / len(confidences) if confidences else None,
                        "metadata": {
                            "cluster_size": len(cluster),
                            "threshold": float(run.params.get("threshold", settings.ATTUNE_MERGE_THRESHOLD)),
                        },
                    },
                )
                merged.merged_from.add(*cluster)
                for original in cluster:
                    merged.evidence_turns.add(*original.evidence_turns.all())

        return write
