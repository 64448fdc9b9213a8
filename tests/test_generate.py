from huggingtweets.generate import copy_check


def test_a_sample_sharing_eight_words_in_a_row_with_a_post_is_a_copy():
    post = "yesterday i went to the beach with my dog and it rained"
    assert copy_check("My dream is i went to the beach with my dog", "My dream is", [post]) == (8, True)
    assert copy_check("My dream is i went to the beach with a cat", "My dream is", [post]) == (6, False)


def test_a_sample_holding_most_of_a_short_post_is_a_copy_but_the_prompt_alone_is_not():
    assert copy_check("My dream is so much fun today", "My dream is", ["so much fun today"]) == (4, True)
    assert copy_check("My dream is big", "My dream is", ["my dream is"]) == (3, False)
    assert copy_check("My dream is big", "My dream is", []) == (0, False)


def test_words_are_compared_case_insensitively_across_all_posts():
    posts = ["nothing alike here", "One Two Three Four Five Six Seven Eight nine"]
    assert copy_check("my dream is one two three four five six seven eight", "My dream is", posts) == (8, True)


def test_each_token_is_drawn_from_what_hfs_sampler_would_keep_with_its_probabilities():
    # Our draw looks only at the top-k; the tokens it may give and their chances must be those HF's own
    # temperature, top-k and top-p warpers leave, on logits with ties, peaks and flat tails.
    import torch
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from huggingtweets.generate import nucleus

    torch.manual_seed(0)
    scores = torch.cat([torch.randn(6, 1000) * s for s in (0.5, 2.0, 8.0)])
    scores[0, :60] = 3.0  # ties across the top-k's edge
    for top_k, top_p, temperature in [(50, 0.95, 1.0), (50, 0.5, 0.7), (0, 0.9, 1.3), (10, 1.0, 1.0), (50, 0.01, 1.0)]:
        theirs = TemperatureLogitsWarper(temperature)(None, scores.clone())
        if top_k:
            theirs = TopKLogitsWarper(top_k)(None, theirs)
        theirs = TopPLogitsWarper(top_p)(None, theirs).softmax(-1)
        probs, ids = nucleus(scores, top_k, top_p, temperature)
        ours = torch.zeros_like(scores).scatter_(-1, ids, probs / probs.sum(-1, keepdim=True))
        if top_k:  # HF keeps every token tied with the k-th: the rows with ties are compared on the rest
            tied = (scores >= torch.topk(scores, top_k).values[:, -1:]).sum(-1) > top_k
            ours, theirs = ours[~tied], theirs[~tied]
        assert torch.equal(ours > 0, theirs > 0), (top_k, top_p, temperature)
        assert torch.allclose(ours, theirs, atol=1e-6), (top_k, top_p, temperature)


def test_samples_are_the_same_for_the_same_seed_and_others_for_another(tiny_gpt2):
    import huggingtweets as ht
    from huggingtweets.generate import unprompted

    model, tokenizer = ht.load_bot(tiny_gpt2, "fp32")
    first = unprompted(model, tokenizer, num_samples=6, max_new_tokens=8, seed=1, batch_size=4)
    assert unprompted(model, tokenizer, num_samples=6, max_new_tokens=8, seed=1, batch_size=4) == first
    assert unprompted(model, tokenizer, num_samples=6, max_new_tokens=8, seed=2, batch_size=4) != first
    assert first[4:] != first[:2]  # one stream of draws across the batches: the second does not repeat the first
    prompted = [s.text for s in ht.generate_samples(model, tokenizer, "My dream is", num_samples=3, max_new_tokens=8)]
    assert len(set(prompted)) == 3 and all(t.startswith("My dream is") for t in prompted)
